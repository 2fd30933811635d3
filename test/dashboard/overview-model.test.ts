/**
 * The overview's read model stays current from the store's post-commit events: what a page shows is never older
 * than the commits made before it was asked for, without a full rebuild for each change. And probe results and
 * renewal failures are post-commit events (what the dashboard's live stream relays).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock, systemClock, type Clock } from '../../src/core/clock.ts';
import { FleetOverview } from '../../src/hub/dashboard/fleet-overview.ts';
import { liveMessageOf } from '../../src/hub/dashboard/live-stream.ts';
import { eventually } from '../helpers/agent.ts';
import type { StoreEvent } from '../../src/store/store-events.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';

async function fixture(
  t: { after: (fn: () => Promise<void>) => void },
  opts: { clock?: Clock; silentAfterMs?: number; maxPending?: number } = {},
) {
  const clock = opts.clock ?? systemClock;
  const store = await openSqliteStore(':memory:', clock);
  const overview = new FleetOverview(store, clock, opts.silentAfterMs ?? 3_600_000, 60_000, opts.maxPending);
  const events: StoreEvent[] = [];
  store.events.onAny((e) => events.push(e));
  t.after(async () => {
    overview.close();
    await store.close();
  });
  const certificate = (name: string) =>
    store.createCertificate(
      { name, sans: [`${name}.example.test`], keyType: 'ecdsa-p256', issuer: 'internal', lifetimeDays: 30 },
      'test',
    );
  const endpoint = (name: string) =>
    store.createEndpoint({ name, kind: 'agent', probeTargets: [], labels: {} }, 'test');
  return { store, overview, events, certificate, endpoint };
}

const keys = async (o: FleetOverview) => (await o.page({}, 0, 100)).items.map((r) => r.key).sort();

describe('fleet overview read model', () => {
  test('a certificate created after the model was built is on the next page', async (t) => {
    const { overview, certificate } = await fixture(t);
    await certificate('alpha');
    assert.deepEqual(await keys(overview), ['alpha']);
    await certificate('beta');
    const page = await overview.page({}, 0, 100);
    assert.deepEqual(page.items.map((r) => r.key).sort(), ['alpha', 'beta']);
    assert.equal(page.counts.certificates, 2);
  });

  test('subscribing an endpoint turns the certificate row into a certificate × endpoint row', async (t) => {
    const { store, overview, certificate, endpoint } = await fixture(t);
    const cert = await certificate('alpha');
    const ep = await endpoint('web-1');
    assert.deepEqual(await keys(overview), ['alpha']);
    await store.upsertSubscription(ep.id, cert.id, { outputs: [] }, 'test');
    assert.deepEqual(await keys(overview), ['alpha/web-1']);
    assert.equal((await overview.page({}, 0, 100)).counts.endpoints, 1);
  });

  test('as the clock moves the model re-ages: an agent that stopped checking in turns silent, one that kept on does not', async (t) => {
    const clock = new ManualClock('2026-03-01T00:00:00.000Z');
    const { store, overview, certificate } = await fixture(t, { clock, silentAfterMs: 30 * 60_000 });
    const cert = await certificate('alpha');
    const agents = [];
    for (const name of ['quiet', 'busy']) {
      const ep = await store.createEndpoint({ name, kind: 'agent', probeTargets: [], labels: {} }, 'test');
      await store.upsertSubscription(ep.id, cert.id, { outputs: [] }, 'test');
      await store.touchEndpoint(ep.id, clock.now().toISOString());
      agents.push(ep);
    }
    const attention = async () =>
      Object.fromEntries((await overview.page({}, 0, 100)).items.map((r) => [r.endpoint, r.attention.kind]));
    assert.deepEqual(await attention(), { quiet: 'ok', busy: 'ok' });

    clock.advance(31 * 60_000);
    // an agent's contact is a write with no store event: the re-ageing reads it
    await store.touchEndpoint(agents[1].id, clock.now().toISOString());
    const aged = await eventually(async () => {
      const a = await attention();
      return a.quiet === 'agent_silent' ? a : undefined;
    });
    assert.deepEqual(aged, { quiet: 'agent_silent', busy: 'ok' });
  });

  test('with nobody reading, the changes it holds stay bounded, and the next page still shows all of them', async (t) => {
    const { store, overview, certificate } = await fixture(t, { maxPending: 5 });
    const cert = await certificate('alpha');
    assert.deepEqual(await keys(overview), ['alpha']);
    for (let i = 0; i < 12; i++) {
      const ep = await store.createEndpoint(
        { name: `web-${i}`, kind: 'agent', probeTargets: [], labels: {} },
        'test',
      );
      await store.upsertSubscription(ep.id, cert.id, { outputs: [] }, 'test');
    }
    assert.ok(overview.pendingChanges <= 5, `holds ${overview.pendingChanges} changes`);
    const page = await overview.page({}, 0, 100);
    assert.deepEqual(
      page.items.map((r) => r.key).sort(),
      Array.from({ length: 12 }, (_, i) => `alpha/web-${i}`).sort(),
    );
    assert.equal(page.counts.endpoints, 12);
    assert.equal(overview.pendingChanges, 0);
  });

  test('deleting an endpoint takes its rows away and leaves its certificate alone', async (t) => {
    const { store, overview, certificate, endpoint } = await fixture(t);
    const cert = await certificate('alpha');
    const ep = await endpoint('web-1');
    await store.upsertSubscription(ep.id, cert.id, { outputs: [] }, 'test');
    assert.deepEqual(await keys(overview), ['alpha/web-1']);
    await store.deleteEndpoint('web-1', 'test');
    assert.deepEqual(await keys(overview), ['alpha']);
  });

  test('a recorded renewal failure moves the certificate to "renewal failing" and is a post-commit event', async (t) => {
    const { store, overview, events, certificate } = await fixture(t);
    const cert = await certificate('alpha');
    assert.notEqual((await overview.page({}, 0, 100)).items[0].attention.kind, 'renewal_failing');
    await store.commitRenewal({
      certificate: { id: cert.id },
      actor: 'planner',
      renewalState: (s) => ({ ...s, failures: { count: 1, lastFailureAt: new Date().toISOString() } }),
      events: () => [{ kind: 'renewal.failed', data: { reason: 'due', failures: 1 } }],
    });
    const failed = events.find((e) => e.kind === 'renewal.failed');
    assert.ok(failed && failed.kind === 'renewal.failed');
    assert.equal(failed.certificate.name, 'alpha');
    assert.equal(failed.failures, 1);
    assert.deepEqual(liveMessageOf(failed), { kind: 'renewal.failed', certificate: 'alpha' });
    assert.equal((await overview.page({}, 0, 100)).items[0].attention.kind, 'renewal_failing');
  });

  test('saved probe results are one post-commit event per endpoint, relayed to the live stream', async (t) => {
    const { store, events, endpoint } = await fixture(t);
    const a = await endpoint('web-1');
    const b = await endpoint('web-2');
    const at = new Date().toISOString();
    await store.saveProbeResults([
      { endpointId: a.id, targetKey: 'web-1:443', source: 'hub', at, ok: true, fingerprint: 'AA' },
      { endpointId: a.id, targetKey: 'web-1:8443', source: 'hub', at, ok: false, errorKind: 'refused' },
      { endpointId: b.id, targetKey: 'web-2:443', source: 'hub', at, ok: true, fingerprint: 'BB' },
    ]);
    const probes = events.filter((e) => e.kind === 'probe.recorded');
    assert.deepEqual(
      probes.map((e) => e.kind === 'probe.recorded' && [e.endpointId, e.results.length]),
      [
        [a.id, 2],
        [b.id, 1],
      ],
    );
    assert.deepEqual(liveMessageOf(probes[0]), { kind: 'probe.recorded', endpointId: a.id, ok: false });
  });
});
