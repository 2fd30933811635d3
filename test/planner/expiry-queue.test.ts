import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExpiryQueue } from '../../src/hub/planner/expiry-queue.ts';

test('hands over exactly the items due by now, earliest first, and keeps the rest for later', () => {
  const q = new ExpiryQueue<string>();
  const times = [50, 10, 40, 10, 30, 70, 20, 60];
  times.forEach((at, i) => q.push(at, `${at}#${i}`));
  const due: string[] = [];
  q.expire(40, (item) => due.push(item));
  assert.deepEqual(
    due.map((d) => Number(d.split('#')[0])),
    [10, 10, 20, 30, 40],
  );
  assert.equal(q.size, 3);
  const rest: string[] = [];
  q.expire(1000, (item) => rest.push(item));
  assert.deepEqual(rest, ['50#0', '60#7', '70#5']);
  assert.equal(q.size, 0);
});
