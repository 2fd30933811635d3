/**
 * Failed authentication attempts per client address, in a sliding window: after `max` failures within `windowMs`
 * the address is refused (429 with Retry-After) until its oldest failure leaves the window. Only failures count,
 * so a busy monitoring script with a valid token is never slowed, while guessing tokens gets `max` tries a window.
 *
 * Per hub process; behind a proxy, give the hub its address (`--trusted-proxy`, trusted-proxies.ts) so `req.ip` is
 * the client, not the proxy.
 */
import { z } from 'zod';
import { setBounded } from '../../core/bounded-map.ts';

/** `api.authFailures` in the hub config. */
export const apiHubConfigShape = {
  api: z
    .strictObject({
      authFailures: z
        .strictObject({
          max: z.number().int().min(1).default(20),
          windowSeconds: z.number().int().min(1).max(86_400).default(60),
        })
        .optional(),
      /** false: answer every read page afresh (src/hub/api/page-cache.ts); for measuring, not for production. */
      pageCache: z.boolean().optional(),
      /** How late cached pages may show agents' last contact (page-cache.ts; default 5, up to twice that); 0: never. */
      lastContactLagSeconds: z.number().min(0).max(60).optional(),
    })
    .optional(),
};

export interface FailureLimitOptions {
  /** Failures allowed per window; default 20. */
  max?: number;
  /** Default 60 s. */
  windowMs?: number;
  now?: () => number;
}

/** Addresses tracked at most; beyond it the oldest entry goes (memory stays bounded under a spray of addresses). */
const MAX_ADDRESSES = 10_000;

export class FailureLimiter {
  readonly max: number;
  readonly windowMs: number;
  private readonly now: () => number;
  private readonly failures = new Map<string, number[]>();

  constructor(opts: FailureLimitOptions = {}) {
    this.max = opts.max ?? 20;
    this.windowMs = opts.windowMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** Records one failed attempt from `address`. */
  fail(address: string): void {
    const now = this.now();
    const times = this.recent(address, now);
    times.push(now);
    setBounded(this.failures, MAX_ADDRESSES, address, times); // Map order is then oldest activity first
  }

  /** 0 when `address` may try; else how many seconds until it may (whole seconds, at least 1). */
  retryAfterSeconds(address: string): number {
    if (!this.failures.has(address)) return 0; // every request asks: the common answer costs one lookup
    const now = this.now();
    const times = this.recent(address, now);
    if (times.length < this.max) return 0;
    const freeAt = times[times.length - this.max] + this.windowMs;
    return Math.max(1, Math.ceil((freeAt - now) / 1000));
  }

  private recent(address: string, now: number): number[] {
    const times = (this.failures.get(address) ?? []).filter((t) => t > now - this.windowMs);
    if (times.length === 0) this.failures.delete(address);
    else this.failures.set(address, times);
    return times;
  }
}
