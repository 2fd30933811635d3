import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerSlots } from '../../src/hub/agent-protocol/answer-slots.ts';

const turn = () => new Promise((r) => setImmediate(r));

describe('answer slots (bounded answers in flight)', () => {
  test('at most `limit` are held; the others get theirs in arrival order as slots are released', async () => {
    const slots = new AnswerSlots(2);
    const order: number[] = [];
    const releases = new Map<number, () => void>();
    const take = (i: number) =>
      void slots.acquire().then((release) => {
        order.push(i);
        releases.set(i, release!);
      });
    for (let i = 1; i <= 5; i++) take(i);
    await turn();
    assert.deepEqual(order, [1, 2]);
    assert.equal(slots.active, 2);
    assert.equal(slots.waiting, 3);

    releases.get(2)!();
    releases.get(2)!(); // a second call releases nothing more
    await turn();
    assert.deepEqual(order, [1, 2, 3]);
    assert.equal(slots.active, 2);

    releases.get(1)!();
    releases.get(3)!();
    await turn();
    assert.deepEqual(order, [1, 2, 3, 4, 5]);
    releases.get(4)!();
    releases.get(5)!();
    assert.equal(slots.active, 0);
    assert.equal(slots.waiting, 0);
  });

  test('a caller whose signal aborts while waiting leaves the queue without taking a slot', async () => {
    const slots = new AnswerSlots(1);
    const first = await slots.acquire();
    const hungUp = new AbortController();
    const leaving = slots.acquire(hungUp.signal);
    const next = slots.acquire();
    hungUp.abort();
    assert.equal(await leaving, undefined);
    assert.equal(slots.waiting, 1);
    first!();
    assert.equal(typeof (await next), 'function', 'the slot went to the caller still waiting');
    assert.equal(await slots.acquire(AbortSignal.abort()), undefined, 'already aborted: no slot');
    assert.equal(slots.active, 1);
  });
});
