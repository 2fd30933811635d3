import { Resolver } from 'node:dns/promises';
import { CertfleetError } from '../core/errors.ts';
import type { ChallengeInput, Solver } from './solver.ts';

export interface PropagationOptions {
  /** Resolvers to ask, as "host:port" or "host" (port 53); all must see the value. */
  resolvers: string[];
  timeoutMs?: number;
  intervalMs?: number;
}

/** The TXT record name a dns-01 answer lives at (RFC 8555 section 8.4). */
export function challengeRecordName(identifier: string): string {
  return `_acme-challenge.${identifier.replace(/^\*\./, '').replace(/\.$/, '')}`;
}

/** Waits until every resolver answers `value` among the TXT records of `name`. */
export async function waitForTxt(
  name: string,
  value: string,
  opts: PropagationOptions,
  signal?: AbortSignal,
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(opts.resolvers);
  let lastProblem = '';
  while (pending.size) {
    for (const spec of [...pending]) {
      signal?.throwIfAborted();
      const r = new Resolver({ timeout: 2000, tries: 1 });
      r.setServers([spec]); // "127.0.0.1:8053", "[::1]:53" or a bare host
      try {
        const records = await r.resolveTxt(name);
        if (records.some((chunks) => chunks.join('') === value)) pending.delete(spec);
        else lastProblem = `${records.length} other TXT value(s)`;
      } catch (e) {
        lastProblem = (e as { code?: string }).code ?? String(e);
      }
    }
    if (!pending.size) return;
    if (Date.now() > deadline) {
      throw new CertfleetError(
        'ISSUANCE_FAILED',
        `DNS TXT record ${name} not visible after ${Math.round(timeoutMs / 1000)} s at ${[...pending].join(', ')} (last answer: ${lastProblem})`,
        'check the DNS provider credentials and zone, and that the resolver asks the authoritative servers',
        { details: { name, resolvers: [...pending] } },
      );
    }
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, opts.intervalMs ?? 250);
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }
}

/** A dns-01 solver that, after its provider wrote the record, waits until resolvers see it. */
export class PropagationCheckedSolver implements Solver {
  readonly type = 'dns-01' as const;
  constructor(
    private readonly inner: Solver,
    private readonly opts: PropagationOptions,
  ) {}
  async present(ch: ChallengeInput, signal?: AbortSignal): Promise<void> {
    await this.inner.present(ch, signal);
    await waitForTxt(challengeRecordName(ch.identifier), ch.dnsValue ?? '', this.opts, signal);
  }
  cleanup(ch: ChallengeInput, signal?: AbortSignal): Promise<void> {
    return this.inner.cleanup(ch, signal);
  }
}
