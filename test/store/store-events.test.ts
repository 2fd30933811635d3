import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { ManualClock } from '../../src/core/clock.ts';
import { createLogger } from '../../src/core/log.ts';
import { RevisionNotifier } from '../../src/hub/agent-protocol/revision-notifier.ts';
import type { Database } from '../../src/store/schema.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import type { StoreEvent } from '../../src/store/store-events.ts';
import type { NewCertificate, NewVersion } from '../../src/store/store.ts';
import { createCertificate, enrollTestAgent, subscribe } from '../helpers/agent.ts';
import { startTestHub } from '../helpers/hub.ts';
import { onCleanup } from '../helpers/cleanup.ts';

const CERT: Omit<NewCertificate, 'name'> = {
  sans: ['web.example.test'],
  keyType: 'ecdsa-p256',
  issuer: 'internal',
  lifetimeDays: 30,
};
const version = (serial: string): NewVersion => ({
  serial,
  fingerprint: `fp-${serial}`,
  notBefore: '2026-01-01T00:00:00Z',
  notAfter: '2026-02-01T00:00:00Z',
  certPem: 'cert',
  chainPem: 'chain',
  sealedKey: 'sealed',
  issuer: 'internal',
});

/**
 * A SqlStore on a SQLite file in a temp dir, plus a second, read-only connection: listeners read it synchronously
 * to prove what was committed when they ran. Closed (then removed) when the test ends.
 */
async function openStore(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-events-'));
  const path = join(dir, 'hub.db');
  const logs: string[] = [];
  const sqlite = new BetterSqlite3(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  await SqlStore.migrate(db, 'sqlite');
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk, _enc, cb) {
        logs.push(chunk.toString());
        cb();
      },
    }),
  });
  const store = new SqlStore(db, new ManualClock('2026-01-01T00:00:00Z'), undefined, { logger });
  const reader = new BetterSqlite3(path, { readonly: true });
  onCleanup(t, async () => {
    reader.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const committedState = (deploymentId: string) =>
    (reader.prepare('select state from deployments where id = ?').get(deploymentId) as { state: string })
      ?.state;
  return { store, logs, committedState };
}

/** Everything `store` announces from now on. */
function record(store: SqlStore): StoreEvent[] {
  const seen: StoreEvent[] = [];
  store.events.onAny((e) => seen.push(e));
  return seen;
}

describe('post-commit store events', () => {
  test('every committed change is announced once, with its payload, before the call returns', async (t) => {
    const { store, committedState } = await openStore(t);
    const seen = record(store);
    const committedAtEmit: Array<string | undefined> = [];
    store.events.on('deployment.transitioned', (e) => committedAtEmit.push(committedState(e.deployment.id)));

    const cert = await store.createCertificate({ name: 'web', ...CERT }, 'admin:a');
    const endpoint = await store.createEndpoint(
      { name: 'web1', kind: 'agent', probeTargets: [], labels: {} },
      'admin:a',
    );
    assert.deepEqual(
      seen.map((e) => e.kind),
      ['certificate.changed', 'endpoint.changed'],
      'announced before the mutating call returned',
    );
    const { subscription } = await store.upsertSubscription(endpoint.id, cert.id, { outputs: [] }, 'admin:a');
    const v1 = await store.addVersion(cert.id, version('01'), 'planner');
    const installed = await store.transitionDeployment(subscription.id, v1.id, 'installed', {}, 'agent:web1');
    await store.transitionDeployments([
      { subscriptionId: subscription.id, versionId: v1.id, state: 'reloaded', info: {}, actor: 'agent:web1' },
      { subscriptionId: subscription.id, versionId: v1.id, state: 'verified', info: {}, actor: 'probe' },
    ]);
    await store.deleteSubscription(subscription.id, 'admin:a');

    assert.deepEqual(seen, [
      {
        kind: 'certificate.changed',
        change: 'created',
        certificate: { id: cert.id, name: 'web' },
        actor: 'admin:a',
      },
      {
        kind: 'endpoint.changed',
        change: 'created',
        endpoint: { id: endpoint.id, name: 'web1' },
        actor: 'admin:a',
      },
      { kind: 'revision.bumped', revision: 1, scope: { endpointIds: [endpoint.id] } },
      {
        kind: 'subscription.changed',
        change: 'created',
        subscriptionId: subscription.id,
        endpointId: endpoint.id,
        certificateId: cert.id,
        subscription,
        actor: 'admin:a',
      },
      { kind: 'revision.bumped', revision: 2, scope: { certificateIds: [cert.id] } },
      { kind: 'version.added', certificate: { id: cert.id, name: 'web' }, version: v1, actor: 'planner' },
      { kind: 'deployment.transitioned', deployment: installed, from: 'pending', actor: 'agent:web1' },
      {
        kind: 'deployment.transitioned',
        deployment: { ...installed, state: 'reloaded' },
        from: 'installed',
        actor: 'agent:web1',
      },
      {
        kind: 'deployment.transitioned',
        deployment: { ...installed, state: 'verified' },
        from: 'reloaded',
        actor: 'probe',
      },
      { kind: 'revision.bumped', revision: 3, scope: { endpointIds: [endpoint.id] } },
      {
        kind: 'subscription.changed',
        change: 'deleted',
        subscriptionId: subscription.id,
        endpointId: endpoint.id,
        certificateId: cert.id,
        actor: 'admin:a',
      },
    ]);
    assert.equal(await store.revision(), 3);
    // A second connection already saw each transition when it was announced: emitted after the commit (the
    // batch's two transitions after its one commit, so both already see its final state).
    assert.deepEqual(committedAtEmit, ['installed', 'verified', 'verified']);
  });

  test('a rolled-back write announces nothing, not even the parts that ran before the failure', async (t) => {
    const { store } = await openStore(t);
    const cert = await store.createCertificate({ name: 'web', ...CERT }, 'test');
    const endpoint = await store.createEndpoint(
      { name: 'web1', kind: 'agent', probeTargets: [], labels: {} },
      'test',
    );
    const { subscription } = await store.upsertSubscription(endpoint.id, cert.id, { outputs: [] }, 'test');
    const v1 = await store.addVersion(cert.id, version('01'), 'test');
    const seen = record(store);

    await assert.rejects(
      store.createCertificate({ name: 'web', ...CERT }, 'test'),
      (e: any) => e.code === 'ALREADY_EXISTS',
    );
    await assert.rejects(store.updateCertificate('missing', { lifetimeDays: 10 }, 'test'));
    // The first item is applied inside the transaction, the second breaks a foreign key: all or nothing.
    await assert.rejects(
      store.transitionDeployments([
        {
          subscriptionId: subscription.id,
          versionId: v1.id,
          state: 'installed',
          info: {},
          actor: 'agent:web1',
        },
        {
          subscriptionId: 'no-such-subscription',
          versionId: v1.id,
          state: 'installed',
          info: {},
          actor: 'agent:web1',
        },
      ]),
    );
    await assert.rejects(store.addVersion('no-such-certificate', version('02'), 'test'));

    assert.equal(seen.length, 0, `announced: ${JSON.stringify(seen)}`);
    assert.equal((await store.getDeployment(subscription.id, v1.id))?.state, 'pending');
    // Later writes are announced as usual: a failed one does not hold the stream back.
    await store.transitionDeployment(subscription.id, v1.id, 'installed', {}, 'agent:web1');
    assert.deepEqual(
      seen.map((e) => e.kind),
      ['deployment.transitioned'],
    );
  });

  test('a throwing listener is logged and neither fails the write nor silences the other listeners', async (t) => {
    const { store, logs } = await openStore(t);
    store.events.on('certificate.changed', () => {
      throw new Error('listener bug');
    });
    const seen = record(store);

    const cert = await store.createCertificate({ name: 'web', ...CERT }, 'test');

    assert.equal((await store.getCertificate('web'))?.id, cert.id);
    assert.deepEqual(
      seen.map((e) => e.kind),
      ['certificate.changed'],
    );
    const logged = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(
      logged.some(
        (l) =>
          l.msg === 'store event listener failed' &&
          l.event_kind === 'certificate.changed' &&
          l.err_message === 'listener bug',
      ),
      `logged: ${logs.join('')}`,
    );
  });

  test('concurrent writes are announced in commit order; unsubscribing stops delivery', async (t) => {
    const { store } = await openStore(t);
    const cert = await store.createCertificate({ name: 'web', ...CERT }, 'test');
    const subs = [];
    for (let i = 0; i < 8; i++) {
      const e = await store.createEndpoint(
        { name: `web${i}`, kind: 'agent', probeTargets: [], labels: {} },
        'test',
      );
      subs.push((await store.upsertSubscription(e.id, cert.id, { outputs: [] }, 'test')).subscription);
    }
    const v1 = await store.addVersion(cert.id, version('01'), 'test');
    const before = (await store.listEvents({ limit: 1000 })).at(-1)!.id;
    const transitions: string[] = [];
    const off = store.events.on('deployment.transitioned', (e) =>
      transitions.push(`${e.deployment.id} ${e.deployment.state}`),
    );

    await Promise.all(
      subs.flatMap((s) => [
        store.transitionDeployment(s.id, v1.id, 'installed', {}, 'agent:x'),
        store.transitionDeployments([
          { subscriptionId: s.id, versionId: v1.id, state: 'reloaded', info: {}, actor: 'agent:x' },
        ]),
      ]),
    );

    // The audit log's ids are the commit order.
    const audit = (await store.listEvents({ kind: 'deployment.', afterId: before, limit: 1000 })).map(
      (e) => `${String(e.data.deployment_id)} ${e.kind.slice('deployment.'.length)}`,
    );
    assert.equal(transitions.length, 16);
    assert.deepEqual(transitions, audit);

    off();
    await store.transitionDeployment(subs[0].id, v1.id, 'verified', {}, 'probe');
    assert.equal(transitions.length, 16);
  });
});

describe('subscribers built before or after the hub', () => {
  test('a listener and a notifier made after the routes still see changes made through the API', async (t) => {
    const hub = await startTestHub(t); // app and routes built, store in use
    const transitions: string[] = [];
    const off = hub.ctx.store.events.on('deployment.transitioned', ({ deployment, actor }) =>
      transitions.push(`${actor} ${deployment.state}`),
    );
    onCleanup(t, off);
    // Its fallback poll is far beyond the test: only the store's events can wake it.
    const notifier = RevisionNotifier.forStore(hub.ctx.store, 60_000);
    onCleanup(t, () => notifier.close());

    await createCertificate(hub, 'web');
    const agent = await enrollTestAgent(t, hub, 'web1');
    const since = await hub.ctx.store.revision();
    const woken = notifier.wait(since, 30_000);
    const subscriptionId = await subscribe(hub, 'web1', 'web');
    assert.ok((await woken) > since, 'the subscription woke the notifier');

    const desired = await agent.client.desired(-1, 0);
    const versionId = desired.subscriptions[0].version!.id;
    await agent.client.report([
      { subscriptionId, versionId, state: 'installed', at: new Date().toISOString() },
    ]);
    assert.deepEqual(transitions, ['agent:web1 installed']);
    // The hub's metrics (built before the routes) count it from the same stream.
    const metrics = await hub.app.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, /^certfleet_deployment_transitions_total\{state="installed"\} 1$/m);

    // The agent's own long-poll (through the routes) and the late notifier wake on the renewal's commit.
    const parked = agent.client.desired(desired.revision, 30);
    const lateWake = notifier.wait(desired.revision, 30_000);
    const v2 = await hub.renewal.renewNow('web', 'test');
    assert.equal((await parked).subscriptions[0].version?.id, v2.id);
    assert.ok((await lateWake) > desired.revision);
  });
});
