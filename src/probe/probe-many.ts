/**
 * Probes many targets with bounded concurrency. Each probe carries its own timeout, so one dead or slow target
 * holds one slot for at most that long and never stalls the rest.
 */
import type { ProbeTarget } from '../core/types.ts';
import { probeTarget, type ProbeOptions } from './probe.ts';
import type { ProbeResult } from './probe-result.ts';

/**
 * On loopback (bench/probe.ts) probes are CPU-bound and concurrency barely matters (8-256 within noise); on real
 * networks each handshake waits one or more round trips, so more in flight is what keeps throughput up.
 */
export const DEFAULT_PROBE_CONCURRENCY = 64;

export interface ProbeManyOptions extends ProbeOptions {
  concurrency?: number;
}

/**
 * Results come back in target order (several per target with allAddresses). `onResult` sees each result as
 * soon as it is known, with the index of its target. An aborted signal stops starting new probes; those not
 * started come back as 'other' errors saying so.
 */
export async function probeMany(
  targets: ProbeTarget[],
  opts: ProbeManyOptions = {},
  onResult?: (result: ProbeResult, index: number) => void,
): Promise<ProbeResult[]> {
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? DEFAULT_PROBE_CONCURRENCY));
  const out: ProbeResult[][] = new Array(targets.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= targets.length) return;
      let results: ProbeResult[];
      try {
        results = await probeTarget(targets[i], opts);
      } catch (e) {
        // an invalid target must not take the whole batch down
        results = [
          {
            target: { ...targets[i] },
            ok: false,
            at: (opts.now ?? new Date()).toISOString(),
            error: { kind: 'other', message: e instanceof Error ? e.message : String(e) },
          },
        ];
      }
      out[i] = results;
      if (onResult) for (const r of results) onResult(r, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker));
  return out.flat();
}
