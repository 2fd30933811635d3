import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'node:tls';
import type { ProbeTarget } from '../core/types.ts';
import { probeTarget } from '../probe/probe.ts';

/**
 * After a reload, proves the endpoint serves the new leaf: a TLS handshake against the subscription's verify
 * target, comparing the served leaf's SHA-256 with the version's. Reloads finish asynchronously (nginx swaps
 * workers after `-s reload` returns, and an old worker may still accept a connection after a new one did), so it
 * retries until `totalMs` has passed and needs several handshakes in a row to agree. Only the fingerprint counts:
 * trust and names were checked on the bundle before it was written. Plain TLS targets use a bare handshake
 * (nothing else is needed); STARTTLS targets go through the probe module.
 */
export interface LocalVerifyResult {
  ok: boolean;
  attempts: number;
  /** What the endpoint served on the last attempt, when a handshake worked. */
  servedFingerprint?: string;
  message: string;
}

export interface LocalVerifyOptions {
  /** Keep trying for this long (default 5000 ms). */
  totalMs?: number;
  intervalMs?: number;
  /** Per attempt (default 2000 ms). */
  attemptTimeoutMs?: number;
  /** How many handshakes in a row must see the new leaf (default 3), so a retiring worker is not missed. */
  consecutive?: number;
  signal?: AbortSignal;
}

export async function verifyServedFingerprint(
  target: ProbeTarget,
  expectedFingerprint: string,
  opts: LocalVerifyOptions = {},
): Promise<LocalVerifyResult> {
  const expected = expectedFingerprint.toLowerCase().replace(/:/g, '');
  const deadline = Date.now() + (opts.totalMs ?? 5000);
  const interval = opts.intervalMs ?? 200;
  const needed = opts.consecutive ?? 3;
  let attempts = 0;
  let streak = 0;
  let served: string | undefined;
  let message = '';
  for (;;) {
    opts.signal?.throwIfAborted();
    attempts++;
    const timeoutMs = Math.max(250, Math.min(opts.attemptTimeoutMs ?? 2000, deadline - Date.now()));
    const r = target.starttls
      ? (await probeTarget(target, { timeoutMs, useSystemRoots: false, signal: opts.signal }))[0]
      : await leafFingerprint(target, timeoutMs);
    served = r?.fingerprint;
    streak = served === expected ? streak + 1 : 0;
    if (streak >= needed) {
      return { ok: true, attempts, servedFingerprint: served, message: `serves ${served}` };
    }
    message =
      served === expected
        ? `${target.host}:${target.port} served the deployed certificate only ${streak} time(s) in a row`
        : served
          ? `${target.host}:${target.port} serves certificate ${served}, not the deployed ${expected}`
          : `${target.host}:${target.port}: ${r?.error?.message ?? 'no certificate served'}`;
    // Once the new leaf shows up, confirm it quickly; until then, poll at the normal pace.
    const pause = streak > 0 ? Math.min(interval, 50) : interval;
    if (Date.now() + pause >= deadline) break;
    await sleep(pause, undefined, { signal: opts.signal });
  }
  return {
    ok: false,
    attempts,
    servedFingerprint: served,
    message: `${message} (after ${attempts} attempts)`,
  };
}

/** One TLS handshake; the SHA-256 of the leaf's DER, or why there is none. Never throws. */
function leafFingerprint(
  target: ProbeTarget,
  timeoutMs: number,
): Promise<{ fingerprint?: string; error?: { message: string } }> {
  const host = target.host.replace(/^\[(.*)\]$/, '$1');
  const servername = target.sni ?? (isIP(host) ? undefined : host);
  return new Promise((resolve) => {
    const socket = connect({ host, port: target.port, servername, rejectUnauthorized: false }, () => {
      const raw = socket.getPeerCertificate()?.raw;
      socket.destroy();
      resolve(
        raw?.length
          ? { fingerprint: createHash('sha256').update(raw).digest('hex') }
          : { error: { message: 'the server sent no certificate' } },
      );
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)));
    socket.once('error', (e) => {
      socket.destroy();
      resolve({ error: { message: (e as NodeJS.ErrnoException).code ?? e.message } });
    });
  });
}
