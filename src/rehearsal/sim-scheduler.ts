import { ManualClock } from '../core/clock.ts';

/** One piece of work due at a simulated instant. */
export type SimTask = () => void | Promise<void>;

interface Entry {
  at: number;
  seq: number;
  task: SimTask;
}

/**
 * Simulated time: an event queue ordered by instant (then by scheduling order) that drives a ManualClock. Work
 * is scheduled at simulated instants instead of on real timers; `runUntil` sets the clock to each event's instant
 * and awaits the task before taking the next one, so a year passes as fast as the work itself. Nothing here ever
 * calls setTimeout: a task that waits for a real timer would stall the simulation, so simulated components must
 * schedule their later work through `at` / `after` instead.
 */
export class SimScheduler {
  readonly clock: ManualClock;
  private readonly heap: Entry[] = [];
  private seq = 0;
  /** Events run so far (for the report and the bench). */
  ran = 0;

  constructor(start: Date | number) {
    this.clock = new ManualClock(start);
  }

  now(): number {
    return this.clock.now().getTime();
  }

  /** Runs `task` at `at` (never before now: a past instant means "as soon as possible", after what is queued for now). */
  at(at: Date | number, task: SimTask): void {
    const t = Math.max(typeof at === 'number' ? at : at.getTime(), this.now());
    this.push({ at: t, seq: this.seq++, task });
  }

  after(ms: number, task: SimTask): void {
    this.at(this.now() + Math.max(0, ms), task);
  }

  get pending(): number {
    return this.heap.length;
  }

  /** When the next event is due, or undefined when none is queued. */
  nextAt(): number | undefined {
    return this.heap[0]?.at;
  }

  /** Runs every event due up to and including `end`, in order, then leaves the clock at `end`. */
  async runUntil(end: Date | number): Promise<void> {
    const stop = typeof end === 'number' ? end : end.getTime();
    while (this.heap.length && this.heap[0].at <= stop) {
      const e = this.pop();
      this.clock.set(e.at);
      this.ran++;
      await e.task();
    }
    if (stop > this.now()) this.clock.set(stop);
  }

  // A binary min-heap on (at, seq): O(log n) per event, for queues of many thousand endpoints.
  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): Entry {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
