/**
 * The overview's order, as a table of sentences: what needs a person comes first, and "close to expiry" is a
 * fraction of each certificate's own lifetime (or its ARI window), never a fixed number of days.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attentionOf, byAttention, type AttentionInput } from '../../src/hub/dashboard/attention.ts';

const DAY = 86_400_000;
const now = new Date('2026-06-01T00:00:00Z');
/** A version issued `ageDays` ago with a lifetime of `lifetimeDays`. */
const version = (ageDays: number, lifetimeDays: number) => ({
  notBefore: new Date(now.getTime() - ageDays * DAY),
  notAfter: new Date(now.getTime() + (lifetimeDays - ageDays) * DAY),
});
const base: AttentionInput = {
  now,
  silentAfterMs: 30 * 60_000,
  renewalFailures: 0,
  state: 'verified',
  ...version(10, 90),
};

describe('attention', () => {
  const rows: Array<[string, Partial<AttentionInput>, string]> = [
    [
      'a diverged deployment comes first, even with failing renewals',
      { state: 'diverged', renewalFailures: 3 },
      'diverged',
    ],
    ['a failed deployment', { state: 'failed' }, 'failed'],
    ['a rolled-back deployment', { state: 'rolled_back' }, 'rolled_back'],
    [
      'a deployment still waiting after its change window closed',
      { state: 'waiting_window', windowEndedAt: new Date(now.getTime() - 60_000) },
      'window_missed',
    ],
    [
      'a deployment waiting for a window that is still ahead is only in progress',
      { state: 'waiting_window', windowEndedAt: new Date(now.getTime() + DAY) },
      'in_progress',
    ],
    ['an agent silent past the threshold', { silentForMs: 31 * 60_000 }, 'agent_silent'],
    ['an agent that checked in recently is fine', { silentForMs: 5 * 60_000 }, 'ok'],
    ['a certificate whose renewal keeps failing', { renewalFailures: 2 }, 'renewal_failing'],
    ['a 90-day certificate at day 61 (past 2/3 of its lifetime)', version(61, 90), 'expiring'],
    ['a 90-day certificate at day 50 is not close to expiry', version(50, 90), 'ok'],
    ['a 6-day certificate at day 2 is not "expiring soon" although it ends in 4 days', version(2, 6), 'ok'],
    ['a 6-day certificate at day 3.5 is (short lifetimes renew at 1/2)', version(3.5, 6), 'expiring'],
    [
      "inside the CA's ARI window, before 2/3 of the lifetime",
      { ariStart: new Date(now.getTime() - DAY) },
      'expiring',
    ],
    ['a deployment on its way (installed) is in progress', { state: 'installed' }, 'in_progress'],
    ['a verified deployment of a young certificate needs nothing', {}, 'ok'],
  ];
  for (const [sentence, input, kind] of rows) {
    test(sentence, () => assert.equal(attentionOf({ ...base, ...input }).kind, kind));
  }

  test('within a kind, the larger elapsed fraction of the lifetime comes first, then the name', () => {
    const row = (key: string, input: Partial<AttentionInput>) => ({
      key,
      attention: attentionOf({ ...base, ...input }),
    });
    const sorted = [
      row('b-ok', {}),
      row('c-90d-day80', version(80, 90)),
      row('d-6d-day5', version(5, 6)),
      row('a-failed', { state: 'failed' }),
      row('e-90d-day70', version(70, 90)),
    ].sort(byAttention);
    assert.deepEqual(
      sorted.map((r) => r.key),
      ['a-failed', 'c-90d-day80', 'd-6d-day5', 'e-90d-day70', 'b-ok'],
    );
  });
});
