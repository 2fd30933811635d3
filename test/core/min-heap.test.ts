import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MinHeap } from '../../src/core/min-heap.ts';

test('pops the least first, whatever the order of pushes; empty gives undefined', () => {
  const heap = new MinHeap<number>((a, b) => a < b);
  assert.equal(heap.pop(), undefined);
  const xs = Array.from({ length: 500 }, (_, i) => (i * 7919) % 503);
  for (const x of xs) heap.push(x);
  assert.equal(heap.size, 500);
  assert.equal(heap.peek(), Math.min(...xs));
  const out: number[] = [];
  for (let x = heap.pop(); x !== undefined; x = heap.pop()) out.push(x);
  assert.deepEqual(
    out,
    [...xs].sort((a, b) => a - b),
  );
  assert.equal(heap.size, 0);
});

test('ties come out in the order the comparator gives them (a sequence number keeps insertion order)', () => {
  type E = { at: number; seq: number };
  const heap = new MinHeap<E>((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq));
  [3, 1, 3, 1, 2, 3].forEach((at, seq) => heap.push({ at, seq }));
  const out: string[] = [];
  for (let e = heap.pop(); e; e = heap.pop()) out.push(`${e.at}:${e.seq}`);
  assert.deepEqual(out, ['1:1', '1:3', '2:4', '3:0', '3:2', '3:5']);
  heap.push({ at: 9, seq: 9 });
  heap.clear();
  assert.equal(heap.pop(), undefined);
});
