/**
 * The shared nonce ledger (hubs on PostgreSQL) records nonces in groups: what arrives while a statement runs goes
 * in the next one. Against a stand-in store that records each call, so the grouping itself is what is checked;
 * the statement's own semantics are the store contract's (test/store/contract).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StoreNonceLedger } from '../../src/hub/agent-protocol/shared-nonces.ts';
import type { Store } from '../../src/store/store.ts';

/** A store whose `rememberNonces` waits until released, remembering keys like the real one. */
function stalledStore() {
  const seen = new Set<string>();
  const calls: string[][] = [];
  const pending: Array<() => void> = [];
  let failNext = false;
  const store = {
    rememberNonces(nonces: ReadonlyArray<{ key: string }>) {
      calls.push(nonces.map((n) => n.key));
      const fail = failNext;
      failNext = false;
      return new Promise<Set<string>>((resolve, reject) =>
        pending.push(() => {
          if (fail) return reject(new Error('connection lost'));
          resolve(new Set(nonces.map((n) => n.key).filter((k) => !seen.has(k) && seen.add(k))));
        }),
      );
    },
  } as unknown as Store;
  const releaseNext = async () => {
    while (!pending.length) await new Promise((r) => setImmediate(r));
    pending.shift()!();
  };
  return { store, calls, releaseNext, failNextCall: () => (failNext = true) };
}

test('nonces arriving while a statement runs are recorded together in the next one; each caller gets its own answer', async () => {
  const s = stalledStore();
  const ledger = new StoreNonceLedger({ store: s.store }, 300_000);
  const now = Date.now();
  const first = ledger.remember('ep-1:a', now);
  const later = ['ep-2:a', 'ep-3:a', 'ep-2:a', 'ep-1:a'].map((k) => ledger.remember(k, now));
  await s.releaseNext();
  assert.equal(await first, true);
  await s.releaseNext();
  assert.deepEqual(
    await Promise.all(later),
    [true, true, false, false],
    'a repeat in one group is a replay too',
  );
  assert.deepEqual(s.calls, [['ep-1:a'], ['ep-2:a', 'ep-3:a', 'ep-2:a', 'ep-1:a']]);
});

test('a failed statement fails the requests of its group only', async () => {
  const s = stalledStore();
  const ledger = new StoreNonceLedger({ store: s.store }, 300_000);
  const now = Date.now();
  s.failNextCall();
  const lost = ledger.remember('ep-1:a', now);
  const next = ledger.remember('ep-2:a', now);
  await s.releaseNext();
  await assert.rejects(lost, /connection lost/);
  await s.releaseNext();
  assert.equal(await next, true);
});
