/**
 * Items by the time they expire, earliest first (a binary min-heap): `expire(now)` hands over every item due by
 * `now` in O(log n) each, so forgetting what left a window costs what expired, not what is kept.
 */
export class ExpiryQueue<T> {
  private readonly heap: { at: number; item: T }[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(at: number, item: T): void {
    const h = this.heap;
    h.push({ at, item });
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent].at <= h[i].at) break;
      [h[parent], h[i]] = [h[i], h[parent]];
      i = parent;
    }
  }

  /** Removes every item that expires at or before `now`, earliest first, passing each to `fn`. */
  expire(now: number, fn: (item: T) => void): void {
    const h = this.heap;
    while (h.length && h[0].at <= now) {
      const top = h[0];
      const last = h.pop()!;
      if (h.length) {
        h[0] = last;
        let i = 0;
        for (;;) {
          const [l, r] = [2 * i + 1, 2 * i + 2];
          let min = i;
          if (l < h.length && h[l].at < h[min].at) min = l;
          if (r < h.length && h[r].at < h[min].at) min = r;
          if (min === i) break;
          [h[min], h[i]] = [h[i], h[min]];
          i = min;
        }
      }
      fn(top.item);
    }
  }

  clear(): void {
    this.heap.length = 0;
  }
}
