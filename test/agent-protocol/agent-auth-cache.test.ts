/**
 * The hub keeps each agent's endpoint and keys past one long-poll (so a renewal that wakes the fleet reads none of
 * them again), and a change to an endpoint reaches the cache when it commits, not when an entry expires.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { systemClock } from '../../src/core/clock.ts';
import { generateAgentKeys, publicKeysOf } from '../../src/agent/agent-identity.ts';
import { AgentAuthCache } from '../../src/hub/agent-protocol/agent-auth.ts';
import { encodeAgentKeys } from '../../src/hub/agent-protocol/agent-keys.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';

const storedKeys = () => {
  const k = publicKeysOf(generateAgentKeys());
  return { stored: encodeAgentKeys(k.signingKey, k.sealingKey), sealing: k.sealingKey };
};

async function fixture(t: { after: (fn: () => Promise<void>) => void }) {
  const store = await openSqliteStore(':memory:', systemClock);
  const cache = new AgentAuthCache(store, 60_000);
  t.after(async () => {
    cache.close();
    await store.close();
  });
  const ep = await store.createEndpoint(
    { name: 'web-1', kind: 'agent', probeTargets: [], labels: {} },
    'test',
  );
  const first = storedKeys();
  await store.setAgentPublicKey(ep.id, first.stored, 'test');
  return { store, cache, ep, first };
}

describe('agent auth cache', () => {
  test('an agent enrolled again is known by its new keys at once, though the old ones were cached', async (t) => {
    const { store, cache, ep, first } = await fixture(t);
    const now = Date.now();
    assert.equal((await cache.lookup(ep.id, now)).keys?.sealing, first.sealing);
    const second = storedKeys();
    await store.setAgentPublicKey(ep.id, second.stored, 'test');
    assert.equal((await cache.lookup(ep.id, now + 1000)).keys?.sealing, second.sealing);
  });

  test('a deleted endpoint is unknown at once', async (t) => {
    const { store, cache, ep } = await fixture(t);
    assert.ok((await cache.lookup(ep.id, Date.now())).endpoint);
    await store.deleteEndpoint('web-1', 'test');
    assert.equal((await cache.lookup(ep.id, Date.now())).endpoint, undefined);
  });

  test('an entry serves later requests without reading the store, and expired entries are dropped', async (t) => {
    const { store, cache, ep } = await fixture(t);
    const now = Date.now();
    const entry = await cache.lookup(ep.id, now);
    let reads = 0;
    const read = store.getEndpointById.bind(store);
    store.getEndpointById = (id) => (reads++, read(id));
    assert.equal(await cache.lookup(ep.id, now + 30_000), entry, 'the same entry, half a minute later');
    assert.equal(reads, 0);
    const other = await store.createEndpoint(
      { name: 'web-2', kind: 'agent', probeTargets: [], labels: {} },
      'test',
    );
    await store.setAgentPublicKey(other.id, storedKeys().stored, 'test');
    await cache.lookup(other.id, now + 61_000); // past web-1's TTL: the sweep drops it
    assert.equal(cache.size, 1);
  });
});
