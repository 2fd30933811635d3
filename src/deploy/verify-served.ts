import { setTimeout as sleep } from 'node:timers/promises';
import type { ProbeTarget } from '../core/types.ts';
import type { ChainFailureKind } from '../pki/judge-chain.ts';
import { probeTarget } from '../probe/probe.ts';
import { formatHostPort } from '../probe/probe-result.ts';
import { judgeServedChain, type ServedExpectation } from './served-chain.ts';

export type { ServedExpectation };

/**
 * After a reload, proves the endpoint serves the new leaf: TLS handshakes (through the probe module, so STARTTLS
 * targets work too) against the subscription's verify target, comparing the served leaf's SHA-256 with the
 * version's, then judging the served chain as clients would (served-chain.ts): a server that sends the right
 * leaf without its intermediate fails verify. Reloads finish asynchronously (nginx swaps workers after
 * `-s reload` returns, and an old worker may still accept a connection after a new one did), so it retries
 * until `totalMs` has passed and needs several good handshakes in a row. Runs wherever the pipeline runs: on
 * the agent's machine for the local target.
 */
export interface VerifyResult {
  ok: boolean;
  attempts: number;
  /** What the endpoint served on the last attempt, when a handshake worked. */
  servedFingerprint?: string;
  /** When the right leaf came with a chain clients refuse: the verdict (missing_intermediate, expired, ...). */
  chainFailure?: ChainFailureKind;
  message: string;
}

export interface VerifyServedOptions {
  /** Keep trying for this long (default 5000 ms). */
  totalMs?: number;
  intervalMs?: number;
  /** Per attempt (default 2000 ms). */
  attemptTimeoutMs?: number;
  /** How many handshakes in a row must see the new leaf (default 3), so a retiring worker is not missed. */
  consecutive?: number;
  /** Dates in the served chain are judged against this (default: now). */
  now?: Date;
  signal?: AbortSignal;
}

export async function verifyServed(
  target: ProbeTarget,
  expected: ServedExpectation,
  opts: VerifyServedOptions = {},
): Promise<VerifyResult> {
  const want = expected.fingerprint.toLowerCase().replace(/:/g, '');
  const hp = formatHostPort(target.host.replace(/^\[(.*)\]$/, '$1'), target.port);
  const deadline = Date.now() + (opts.totalMs ?? 5000);
  const interval = opts.intervalMs ?? 200;
  const needed = opts.consecutive ?? 3;
  let attempts = 0;
  let streak = 0;
  let served: string | undefined;
  let chainFailure: ChainFailureKind | undefined;
  let message = '';
  for (;;) {
    opts.signal?.throwIfAborted();
    attempts++;
    const timeoutMs = Math.max(250, Math.min(opts.attemptTimeoutMs ?? 2000, deadline - Date.now()));
    const [r] = await probeTarget(target, { timeoutMs, useSystemRoots: false, signal: opts.signal });
    served = r?.fingerprint;
    chainFailure = undefined;
    if (served === want) {
      const verdict = judgeServedChain(r.chainPems ?? [], expected, {
        name: target.sni ?? target.host.replace(/^\[(.*)\]$/, '$1'),
        now: opts.now ?? new Date(),
      });
      if (verdict) {
        chainFailure = verdict.kind;
        message = `${hp} serves the deployed certificate, but ${verdict.message}. Fix: ${verdict.hint}`;
      }
    }
    streak = served === want && !chainFailure ? streak + 1 : 0;
    if (streak >= needed) {
      return { ok: true, attempts, servedFingerprint: served, message: `serves ${served}` };
    }
    if (!chainFailure) {
      message =
        served === want
          ? `${hp} served the deployed certificate only ${streak} time(s) in a row`
          : served
            ? `${hp} serves certificate ${served}, not the deployed ${want}`
            : (r?.error?.message ?? `${hp}: no certificate served`);
    }
    // Once the new leaf shows up, confirm it quickly; until then, poll at the normal pace.
    const pause = streak > 0 ? Math.min(interval, 50) : interval;
    if (Date.now() + pause >= deadline) break;
    await sleep(pause, undefined, { signal: opts.signal });
  }
  return {
    ok: false,
    attempts,
    servedFingerprint: served,
    ...(chainFailure ? { chainFailure } : {}),
    message: `${message} (after ${attempts} attempts)`,
  };
}
