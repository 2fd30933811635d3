/**
 * When each fault strikes and whom it hits, drawn from the seed. Durations scale with the certificate lifetime:
 * an outage that outlives the remaining validity would prove nothing about certfleet (no system survives a CA
 * that is down for longer than a certificate lives), so each fault lasts at most a sixth of a lifetime.
 */
import type { FaultKind } from './rehearsal-options.ts';

export interface FaultInstance {
  id: string;
  kind: FaultKind;
  start: number;
  end: number;
  /** Endpoint (= certificate) indexes hit; undefined: all of them (the CA, the hub). */
  affected?: Set<number>;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same fleet and the same faults. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0 || 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MINUTE = 60_000;
const DAY = 1440 * MINUTE;

/** [min, max] duration as fractions of the lifetime, and the share of endpoints hit (undefined: all). */
const SHAPE: Record<FaultKind, { min: number; max: number; share?: number }> = {
  'ca-down': { min: 1 / 24, max: 1 / 6 },
  'rate-limit': { min: 1 / 48, max: 1 / 12 },
  dns: { min: 1 / 24, max: 1 / 6, share: 0.1 },
  'reload-fails': { min: 1 / 24, max: 1 / 8, share: 0.05 },
  'agent-offline': { min: 1 / 24, max: 1 / 6, share: 0.03 },
  'hub-restart': { min: 0, max: 0 },
};

/** The hub is down this long at each restart. */
export const HUB_RESTART_DOWN_MS = 10 * MINUTE;

export function planFaults(opts: {
  kinds: FaultKind[];
  seed: number;
  start: number;
  days: number;
  lifetimeMs: number;
  endpoints: number;
}): FaultInstance[] {
  const rand = seededRandom(opts.seed);
  const out: FaultInstance[] = [];
  const span = opts.days * DAY;
  for (const kind of opts.kinds) {
    const shape = SHAPE[kind];
    // One of each per quarter (at least one); hub restarts monthly (at least two).
    const count =
      kind === 'hub-restart'
        ? Math.max(2, Math.round(opts.days / 30))
        : Math.max(1, Math.round(opts.days / 90));
    for (let n = 0; n < count; n++) {
      // Spread over the run, one per slice, away from its very start (the fleet settles first).
      const slice = span / count;
      const start = Math.floor(opts.start + n * slice + (0.1 + 0.8 * rand()) * slice);
      const length =
        kind === 'hub-restart'
          ? HUB_RESTART_DOWN_MS
          : Math.max(MINUTE, (shape.min + (shape.max - shape.min) * rand()) * opts.lifetimeMs);
      let affected: Set<number> | undefined;
      if (shape.share !== undefined) {
        const want = Math.max(1, Math.round(shape.share * opts.endpoints));
        affected = new Set();
        while (affected.size < Math.min(want, opts.endpoints))
          affected.add(Math.floor(rand() * opts.endpoints));
      }
      out.push({
        id: `${kind}#${n + 1}`,
        kind,
        start,
        end: Math.floor(start + length),
        ...(affected ? { affected } : {}),
      });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/** The instances of `kind` in force at `t` that hit endpoint `i`. */
export function activeFault(
  faults: FaultInstance[],
  kind: FaultKind,
  t: number,
  i?: number,
): FaultInstance | undefined {
  return faults.find(
    (f) =>
      f.kind === kind && f.start <= t && t < f.end && (i === undefined || !f.affected || f.affected.has(i)),
  );
}
