/**
 * Post-commit events across hubs on one PostgreSQL database (src/store/postgres/event-relay.ts): what one hub
 * commits reaches the other hubs' subscribers as 'remote' events, never its own twice; a listener whose connection
 * is cut reconnects, says it may have missed events (`store.resynced`) and re-reads the revision.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import pg from 'pg';
import { ManualClock } from '../../src/core/clock.ts';
import { createLogger } from '../../src/core/log.ts';
import { envelopes } from '../../src/store/postgres/event-relay.ts';
import { openPostgresStore } from '../../src/store/postgres/open-postgres-store.ts';
import type { SqlStore } from '../../src/store/sql-store.ts';
import type { EventOrigin, StoreEvent } from '../../src/store/store-events.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { sharedPostgres } from '../helpers/postgres.ts';

const postgres = sharedPostgres();

async function hub(t: TestContext, url: string, logs: string[] = []): Promise<SqlStore> {
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk, _enc, cb) {
        logs.push(chunk.toString());
        cb();
      },
    }),
  });
  const store = await openPostgresStore(url, new ManualClock(Date.now()), { logger });
  onCleanup(t, () => store.close());
  return store;
}

function record(store: SqlStore): Array<{ kind: string; origin: EventOrigin; event: StoreEvent }> {
  const seen: Array<{ kind: string; origin: EventOrigin; event: StoreEvent }> = [];
  store.events.onAny((event, origin) => seen.push({ kind: event.kind, origin, event }));
  return seen;
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cert = (name: string) => ({
  name,
  sans: [`${name}.example.test`],
  keyType: 'ecdsa-p256' as const,
  issuer: 'internal',
  lifetimeDays: 30,
});

describe('events across hubs (LISTEN/NOTIFY)', () => {
  test("one hub's commit reaches the other hub's subscribers as remote events, and its own only once", async (t) => {
    const url = await postgres.database();
    const [a, b] = [await hub(t, url), await hub(t, url)];
    const [seenA, seenB] = [record(a), record(b)];
    await a.createCertificate(cert('web'), 'test');
    const endpoint = await a.createEndpoint(
      { name: 'web1', kind: 'agent', probeTargets: [], labels: {} },
      'test',
    );
    await until('both events at the other hub', () => seenB.length >= 2);
    assert.deepEqual(
      seenB.map((s) => [s.kind, s.origin]),
      [
        ['certificate.changed', 'remote'],
        ['endpoint.changed', 'remote'],
      ],
    );
    assert.deepEqual(seenB[1].event.kind === 'endpoint.changed' && seenB[1].event.endpoint, {
      id: endpoint.id,
      name: 'web1',
    });
    await new Promise((r) => setTimeout(r, 300)); // its own notifications came back to it meanwhile
    assert.deepEqual(
      seenA.map((s) => [s.kind, s.origin]),
      [
        ['certificate.changed', 'local'],
        ['endpoint.changed', 'local'],
      ],
    );
  });

  test('a long-poll waiting at one hub wakes when another hub bumps the revision', async (t) => {
    const url = await postgres.database();
    const [a, b] = [await hub(t, url), await hub(t, url)];
    const c = await a.createCertificate(cert('web'), 'test');
    const e = await a.createEndpoint({ name: 'web1', kind: 'agent', probeTargets: [], labels: {} }, 'test');
    const bumps: number[] = [];
    b.events.on('revision.bumped', (ev) => bumps.push(ev.revision));
    await a.upsertSubscription(
      e.id,
      c.id,
      { outputs: [{ path: '/tmp/relay.pem', format: 'fullchain' }] } as never,
      'test',
    );
    const revision = await a.revision();
    await until('the bump at the other hub', () => bumps.includes(revision));
  });

  test('a listener whose connection is cut reconnects, says so and re-reads the revision', async (t) => {
    const url = await postgres.database();
    const logs: string[] = [];
    const [a, b] = [await hub(t, url), await hub(t, url, logs)];
    const seenB = record(b);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    onCleanup(t, () => admin.end());
    await admin.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'certfleet-events' and datname = current_database()",
    );
    await a.createCertificate(cert('gap'), 'test'); // may fall into the gap
    await until('the resync', () => seenB.some((s) => s.kind === 'store.resynced'));
    const resync = seenB.findIndex((s) => s.kind === 'store.resynced');
    const after = seenB[resync + 1]?.event;
    assert.equal(after?.kind, 'revision.bumped');
    assert.equal(after.kind === 'revision.bumped' && after.revision, await a.revision());
    assert.match(logs.join(''), /event relay: lost the database connection/);
    assert.match(logs.join(''), /event relay: listening again; resynced/);

    // and it listens again
    seenB.length = 0;
    await a.createCertificate(cert('after'), 'test');
    await until('an event after the reconnect', () => seenB.some((s) => s.kind === 'certificate.changed'));
  });

  test('a batch too large for one notification is split; a version too large travels without its PEM', () => {
    const transitions: StoreEvent[] = Array.from({ length: 200 }, (_, i) => ({
      kind: 'revision.bumped',
      revision: i,
    }));
    const payloads = envelopes('hub-a', transitions);
    assert.ok(payloads.length > 1, 'more than one payload');
    for (const p of payloads) assert.ok(Buffer.byteLength(p) < 8000, 'each below PostgreSQL limit');
    assert.deepEqual(
      payloads.flatMap((p) => JSON.parse(p).events.map((e: { revision: number }) => e.revision)),
      transitions.map((_, i) => i),
    );

    const big: StoreEvent = {
      kind: 'version.added',
      certificate: { id: 'c1', name: 'web' },
      version: {
        id: 'v1',
        certificateId: 'c1',
        serial: '01',
        fingerprint: 'ab',
        notBefore: '2026-01-01T00:00:00.000Z',
        notAfter: '2026-04-01T00:00:00.000Z',
        certPem: 'x'.repeat(5000),
        chainPem: 'y'.repeat(5000),
        createdAt: '2026-01-01T00:00:00.000Z',
      },
      actor: 'test',
    };
    const [only] = envelopes('hub-a', [big]);
    const sent = JSON.parse(only).events[0];
    assert.equal(sent.version.id, 'v1');
    assert.equal(sent.version.certPem, '');
  });
});
