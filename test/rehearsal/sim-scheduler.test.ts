import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimScheduler } from '../../src/rehearsal/sim-scheduler.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;

describe('simulated-time scheduler', () => {
  test('runs events in order of their instant, equal instants in the order they were scheduled', async () => {
    const s = new SimScheduler(T0);
    const seen: string[] = [];
    const note = (name: string) => () => void seen.push(`${name}@${(s.now() - T0) / HOUR}h`);
    s.at(T0 + 5 * HOUR, note('e'));
    s.at(T0 + 1 * HOUR, note('a'));
    s.at(T0 + 3 * HOUR, note('c1'));
    s.at(T0 + 3 * HOUR, note('c2'));
    s.after(2 * HOUR, note('b'));
    await s.runUntil(T0 + 4 * HOUR);
    assert.deepEqual(seen, ['a@1h', 'b@2h', 'c1@3h', 'c2@3h']);
    assert.equal(s.now(), T0 + 4 * HOUR, 'the clock rests at the end of the run');
    assert.equal(s.pending, 1);
    await s.runUntil(T0 + 10 * HOUR);
    assert.deepEqual(seen.at(-1), 'e@5h');
  });

  test('a task may schedule more work, and a past instant runs next without moving the clock back', async () => {
    const s = new SimScheduler(T0);
    const seen: number[] = [];
    s.at(T0 + HOUR, async () => {
      seen.push(s.now());
      s.at(T0, () => void seen.push(s.now()));
      s.after(HOUR, () => void seen.push(s.now()));
    });
    await s.runUntil(T0 + 3 * HOUR);
    assert.deepEqual(seen, [T0 + HOUR, T0 + HOUR, T0 + 2 * HOUR]);
  });

  test('a simulated year of hourly events passes without touching real timers', async (t) => {
    const real = t.mock.method(globalThis, 'setTimeout');
    const s = new SimScheduler(T0);
    let ticks = 0;
    const tick = () => {
      ticks++;
      s.after(HOUR, tick);
    };
    s.at(T0, tick);
    await s.runUntil(T0 + 365 * 24 * HOUR);
    assert.equal(ticks, 365 * 24 + 1);
    assert.equal(real.mock.callCount(), 0);
    assert.equal(s.clock.now().toISOString(), '2027-01-01T00:00:00.000Z');
  });
});
