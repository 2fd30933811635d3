import { MinHeap } from '../../core/min-heap.ts';

/**
 * Items by the time they expire, earliest first: `expire(now)` hands over every item due by `now` in O(log n) each,
 * so forgetting what left a window costs what expired, not what is kept.
 */
export class ExpiryQueue<T> {
  private readonly heap = new MinHeap<{ at: number; item: T }>((a, b) => a.at < b.at);

  get size(): number {
    return this.heap.size;
  }

  push(at: number, item: T): void {
    this.heap.push({ at, item });
  }

  /** Removes every item that expires at or before `now`, earliest first, passing each to `fn`. */
  expire(now: number, fn: (item: T) => void): void {
    for (let top = this.heap.peek(); top && top.at <= now; top = this.heap.peek()) {
      this.heap.pop();
      fn(top.item);
    }
  }

  clear(): void {
    this.heap.clear();
  }
}
