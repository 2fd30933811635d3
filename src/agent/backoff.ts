/** Exponential backoff with full jitter between `minMs` and the current ceiling (which doubles up to `maxMs`). */
export class Backoff {
  private ceiling: number;

  constructor(
    private readonly minMs = 500,
    private readonly maxMs = 30_000,
    private readonly random: () => number = Math.random,
  ) {
    this.ceiling = minMs;
  }

  next(): number {
    const delay = this.minMs / 2 + this.random() * (this.ceiling - this.minMs / 2);
    this.ceiling = Math.min(this.ceiling * 2, this.maxMs);
    return Math.round(delay);
  }

  reset(): void {
    this.ceiling = this.minMs;
  }
}

/** Sleeps, waking early (without throwing) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
