/**
 * At most `limit` agent answers are built and written at once; the others wait in arrival order.
 *
 * A renewal wakes every parked long-poll of a certificate in the same moment. Built all at once, each answer's
 * desired state, sealed bundle, serialized body and TLS records are alive together: at 5,000 agents one hub's
 * RSS grew by hundreds of MB, and the allocator kept that high-water mark after the burst (bench/RESULTS.md,
 * `## ha`). A few dozen in flight keep the event loop as busy (the work is CPU: sealing, serializing, TLS) while
 * the memory of one answer is reused by the next.
 *
 * Contract: `acquire` resolves with a release function once a slot is free; calling it more than once releases
 * once. A caller whose signal aborts while it waits leaves the queue and gets `undefined` (no slot taken).
 */
export class AnswerSlots {
  private held = 0;
  private readonly queue: Array<() => void> = [];

  constructor(readonly limit: number) {}

  /** Answers being built or written now. */
  get active(): number {
    return this.held;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  acquire(signal?: AbortSignal): Promise<(() => void) | undefined> {
    if (signal?.aborted) return Promise.resolve(undefined);
    if (this.held < this.limit) {
      this.held++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve) => {
      const turn = () => {
        signal?.removeEventListener('abort', leave);
        resolve(this.releaser()); // the slot passed on by `release` stays counted in `held`
      };
      const leave = () => {
        const i = this.queue.indexOf(turn);
        if (i >= 0) this.queue.splice(i, 1);
        resolve(undefined);
      };
      signal?.addEventListener('abort', leave, { once: true });
      this.queue.push(turn);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.queue.shift();
      if (next) next();
      else this.held--;
    };
  }
}
