/**
 * `certfleet store migrate --from sqlite:DATA_DIR --to postgres://…` on a real fleet: a hub on SQLite issues
 * certificates (internal CA, several versions with sealed keys), has endpoints, subscriptions, deployments,
 * tokens, probe results and events; after the copy a hub on PostgreSQL with the same data directory serves all of
 * it, `hub check-store` passes on the PostgreSQL store, and a second migrate into the same database is refused.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';
import { openPostgresStore } from '../../src/store/postgres/open-postgres-store.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { runCli, startHubProcess } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';
import { sharedPostgres } from '../helpers/postgres.ts';

const postgres = sharedPostgres();

describe('certfleet store migrate', () => {
  test('copies a whole fleet into PostgreSQL, where a hub serves it and check-store passes', async (t) => {
    // the fleet, made through the hub's API and store as a running hub would
    const hub = await startTestHub(t);
    for (const name of ['web', 'mail', 'api']) {
      await hub.client.post('/api/v1/certificates', {
        name,
        sans: [`${name}.example.test`],
        keyType: 'ecdsa-p256',
      });
    }
    await hub.client.post('/api/v1/certificates/web/renew');
    await hub.client.post('/api/v1/certificates/web/renew');
    const store = hub.ctx.store;
    for (const name of ['web1', 'web2']) {
      await hub.client.post('/api/v1/endpoints', {
        name,
        kind: 'agent',
        probeTargets: [{ host: '127.0.0.1', port: 8443 }],
      });
      await hub.client.post(`/api/v1/endpoints/${name}/enroll-token`, {});
      await hub.client.post('/api/v1/subscriptions', {
        endpoint: name,
        certificate: 'web',
        outputs: [{ path: `/tmp/${name}.pem`, format: 'fullchain' }],
      });
    }
    const web1 = (await store.getEndpoint('web1'))!;
    const [sub] = await store.listSubscriptions({ endpointId: web1.id });
    const current = (await store.currentVersion((await store.getCertificate('web'))!.id))!.id;
    await store.transitionDeployment(sub.id, current, 'delivered', {}, 'agent:web1');
    await store.saveProbeResults([
      {
        endpointId: web1.id,
        targetKey: '127.0.0.1:8443',
        source: 'hub',
        at: new Date().toISOString(),
        ok: true,
        tlsVersion: 'TLSv1.3',
      },
    ]);
    const events = await store.listEvents({ limit: 1000 });
    await hub.close();

    const url = await postgres.database();
    const migrate = await runCli([
      '--json',
      'store',
      'migrate',
      '--from',
      `sqlite:${hub.dataDir}`,
      '--to',
      url,
    ]);
    assert.equal(migrate.code, 0, migrate.stderr);
    const { counts, seconds } = JSON.parse(migrate.stdout);
    t.diagnostic(`migrate of the test fleet: ${seconds.toFixed(2)} s`);

    // the counts it reports are the source's, table by table
    const sqlite = await openSqliteStore(join(hub.dataDir, 'hub.db'), new ManualClock(Date.now()));
    onCleanup(t, () => sqlite.close());
    assert.equal(counts.certificates, 3);
    assert.equal(counts.versions, 5);
    assert.equal(counts.endpoints, 2);
    assert.equal(counts.subscriptions, 2);
    assert.equal(counts.deployments, 2);
    assert.equal(counts.probe_results, 1);
    assert.equal(counts.events, events.length);
    assert.equal(counts.meta, (await sqlite.listMeta()).length);
    assert.ok(counts.tokens >= 3, 'the admin token and two enrollment tokens');

    // the PostgreSQL store holds the same rows: events with their ids, deployments in their states, meta verbatim
    const pg = await openPostgresStore(url, new ManualClock(Date.now()));
    onCleanup(t, () => pg.close());
    assert.deepEqual(await pg.listEvents({ limit: 1000 }), events);
    assert.deepEqual(await pg.listMeta(), await sqlite.listMeta());
    assert.deepEqual((await pg.listDeployments()).map((d) => d.state).sort(), ['delivered', 'pending']);
    assert.deepEqual(await pg.listProbeResults(), await sqlite.listProbeResults());
    await pg.close();

    // a hub on PostgreSQL with the same data directory: the old admin token works, the fleet is there, and new
    // writes (a new event id after the copied ones) go through
    const onPg = await startHubProcess(
      t,
      { CERTFLEET_TOKEN: hub.token },
      { dataDir: hub.dataDir, args: ['--database-url', url] },
    );
    const env = { ...onPg.env, CERTFLEET_TOKEN: hub.token };
    const list = await runCli(['--json', 'cert', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).map((c: { name: string }) => c.name),
      ['api', 'mail', 'web'],
    );
    const renew = await runCli(['cert', 'renew', 'mail'], env);
    assert.equal(renew.code, 0, renew.stderr);

    const check = await runCli(['hub', 'check-store', '--data-dir', hub.dataDir, '--database-url', url]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /3 certificates, 6 versions, 0 ACME accounts: all checks passed/);
  });

  test('a database that already holds a store is refused, and left as it was', async (t) => {
    const hub = await startTestHub(t);
    await hub.close();
    const url = await postgres.database();
    const target = await openPostgresStore(url, new ManualClock(Date.now()));
    onCleanup(t, () => target.close());
    await target.createCertificate(
      {
        name: 'other',
        sans: ['other.example.test'],
        keyType: 'ecdsa-p256',
        issuer: 'internal',
        lifetimeDays: 30,
      },
      'test',
    );
    const before = await target.listEvents();

    const again = await runCli(['store', 'migrate', '--from', `sqlite:${hub.dataDir}`, '--to', url]);
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /error: the database certfleet@127\.0\.0\.1:\d+\/cf_\w+ is not empty \(.*1 certificates/,
    );
    assert.match(again.stderr, /hint: migrate into a new, empty database/);
    assert.deepEqual(await target.listEvents(), before);
    assert.deepEqual(
      (await target.listCertificates()).map((c) => c.name),
      ['other'],
    );
  });
});
