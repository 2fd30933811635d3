import { ManualClock } from '../core/clock.ts';
import { MinHeap } from '../core/min-heap.ts';

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
  // by instant, then by scheduling order: O(log n) per event, for queues of many thousand endpoints
  private readonly heap = new MinHeap<Entry>((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq));
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
    this.heap.push({ at: t, seq: this.seq++, task });
  }

  after(ms: number, task: SimTask): void {
    this.at(this.now() + Math.max(0, ms), task);
  }

  get pending(): number {
    return this.heap.size;
  }

  /** When the next event is due, or undefined when none is queued. */
  nextAt(): number | undefined {
    return this.heap.peek()?.at;
  }

  /** Runs every event due up to and including `end`, in order, then leaves the clock at `end`. */
  async runUntil(end: Date | number): Promise<void> {
    const stop = typeof end === 'number' ? end : end.getTime();
    for (let e = this.heap.peek(); e && e.at <= stop; e = this.heap.peek()) {
      this.heap.pop();
      this.clock.set(e.at);
      this.ran++;
      await e.task();
    }
    if (stop > this.now()) this.clock.set(stop);
  }
}
