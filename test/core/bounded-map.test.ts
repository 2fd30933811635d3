import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setBounded } from '../../src/core/bounded-map.ts';

test('keeps at most max entries, forgetting the one set longest ago; a re-set key becomes the newest', () => {
  const m = new Map<string, number>();
  for (const [k, v] of [
    ['a', 1],
    ['b', 2],
    ['c', 3],
  ] as const)
    setBounded(m, 3, k, v);
  setBounded(m, 3, 'a', 10); // a is now the newest
  setBounded(m, 3, 'd', 4); // b goes
  assert.deepEqual(
    [...m],
    [
      ['c', 3],
      ['a', 10],
      ['d', 4],
    ],
  );
  setBounded(m, 2, 'e', 5); // a smaller bound trims to it
  assert.deepEqual(
    [...m],
    [
      ['d', 4],
      ['e', 5],
    ],
  );
});
