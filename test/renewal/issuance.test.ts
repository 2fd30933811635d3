import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { TestContext } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';

const HOUR_MS = 3_600_000;
import { CertfleetError, type ErrorCode } from '../../src/core/errors.ts';
import type { Issuer } from '../../src/issuers/issuer.ts';
import type { AcmeRuntime } from '../../src/hub/acme/acme-runtime.ts';
import { CertificateService } from '../../src/hub/certificate-service.ts';
import { openHubContext } from '../../src/hub/hub.ts';
import { evaluateRenewal, resolveBudgetConfig } from '../../src/hub/planner/index.ts';
import { PlannerService } from '../../src/hub/planner-service.ts';
import { Issuance } from '../../src/hub/renewal/issuance.ts';
import { RateLimitStore } from '../../src/hub/renewal/rate-limit-store.ts';
import { RenewalService } from '../../src/hub/renewal/renewal-service.ts';
import { afterFailed, storeChange, type RenewalState } from '../../src/hub/renewal/renewal-state.ts';
import type { Database } from '../../src/store/schema.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import { onCleanup } from '../helpers/cleanup.ts';

const DIRECTORY = 'https://ca.test/directory';

/**
 * Counts commits on the SQLite connection: every BEGIN, plus every write made outside a transaction (each of
 * those commits by itself).
 */
function countingSqlite(path: string) {
  const sqlite = new BetterSqlite3(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  const counter = { commits: 0, inTransaction: false, sqlite };
  const database = new Proxy(sqlite, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (prop !== 'prepare') return typeof value === 'function' ? value.bind(target) : value;
      return (sql: string) => {
        const verb = sql.trimStart().split(/\s/, 1)[0].toLowerCase();
        if (verb === 'begin') {
          counter.commits++;
          counter.inTransaction = true;
        } else if (verb === 'commit' || verb === 'rollback') counter.inTransaction = false;
        else if (!counter.inTransaction && ['insert', 'update', 'delete'].includes(verb)) counter.commits++;
        return target.prepare(sql);
      };
    },
  });
  return { counter, database };
}

/**
 * A hub context over a counting SQLite store, with an issuer "ca" that has a rate-limit budget of `orders` new
 * orders per hour. Its versions come from the internal CA: only the budget bookkeeping of an ACME directory is
 * under test here, not the protocol (test/acme-hub covers that against Pebble).
 */
async function setup(t: TestContext, orders = 10) {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-renewal-'));
  const { counter, database } = countingSqlite(join(dir, 'hub.db'));
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  const clock = new ManualClock('2025-01-01T00:00:00Z');
  await SqlStore.migrate(db, 'sqlite');
  const store = new SqlStore(db, clock);
  onCleanup(t, async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const ctx = await openHubContext({ dataDir: dir, env: {}, clock, store });
  ctx.logger.level = 'silent';
  ctx.issuers.set('ca', ctx.internalCa);
  const acme = {
    entries: new Map([
      [
        'ca',
        {
          config: { name: 'ca', directoryUrl: DIRECTORY },
          budget: resolveBudgetConfig({
            limits: { NewOrdersPerAccount: { count: orders, windowMs: HOUR_MS } },
          }),
        },
      ],
    ]),
  } as unknown as AcmeRuntime;
  const issuance = new Issuance(ctx, { rateLimits: new RateLimitStore(ctx, acme) });
  const certificates = new CertificateService(ctx, issuance);
  const renewal = new RenewalService(ctx, issuance, acme);
  /** Orders the stored budget counts against one limit: the account's, or the exact set of `name`'s SANs. */
  const budgetOrders = async (limit: 'NewOrdersPerAccount' | { exactSetOf: string }) => {
    const key =
      limit === 'NewOrdersPerAccount'
        ? 'NewOrdersPerAccount|default'
        : `CertificatesPerFQDNSet|${limit.exactSetOf}.example.test`;
    return (await store.rateLimitOrdersAfter(DIRECTORY, 0)).filter((o) => o.windows.includes(key)).length;
  };
  const spec = (name: string, issuer = 'ca') => ({
    name,
    sans: [`${name}.example.test`],
    keyType: 'ecdsa-p256' as const,
    issuer,
    lifetimeDays: 30,
  });
  return { ctx, store, clock, counter, sqlite: counter.sqlite, certificates, renewal, budgetOrders, spec };
}

/** What a renewal could leave behind, to compare before and after. */
async function snapshot(store: SqlStore, certId: string) {
  return {
    versions: (await store.listVersions(certId)).map((v) => v.id),
    current: (await store.currentVersion(certId))?.id,
    revision: await store.revision(),
    deployments: (await store.listDeployments()).map((d) => `${d.versionId}:${d.state}`),
    renewalState: await store.getRenewalState(certId),
    events: (await store.listEvents({ limit: 1000 })).map((e) => e.id),
  };
}

async function subscribe(store: SqlStore, certId: string) {
  const endpoint = await store.createEndpoint(
    { name: 'edge', kind: 'agent', probeTargets: [], labels: {} },
    'test',
  );
  await store.upsertSubscription(endpoint.id, certId, { outputs: [] }, 'test');
}

const refusal = (code: ErrorCode) => (e: unknown) =>
  e instanceof CertfleetError && e.code === code ? true : assert.fail(`expected ${code}, got ${String(e)}`);

test('an issuance commits in one transaction: version, deployments, budget, renewal state and event', async (t) => {
  const h = await setup(t);
  h.counter.commits = 0;
  const cert = await h.certificates.create(h.spec('web'), 'test');
  assert.equal(h.counter.commits, 1, 'creating a certificate with its first version is one commit');
  await subscribe(h.store, cert.id);
  await h.store.setRenewalState(cert.id, {
    failures: { count: 2, lastFailureAt: h.clock.now().toISOString() },
  });
  const first = (await h.store.currentVersion(cert.id))!;

  h.counter.commits = 0;
  const v2 = await h.renewal.renewNow('web', 'admin:test');
  assert.equal(
    h.counter.commits,
    2,
    'renew now: its request before the order, then the renewal in one commit',
  );
  assert.notEqual(v2.id, first.id);
  assert.equal((await h.store.currentVersion(cert.id))!.id, v2.id);
  assert.deepEqual(
    (await h.store.listDeployments({ versionId: v2.id })).map((d) => d.state),
    ['pending'],
  );
  assert.equal(await h.budgetOrders({ exactSetOf: 'web' }), 2, 'both orders are in the stored budget');
  assert.deepEqual(await h.store.getRenewalState(cert.id), {}, 'the failures are cleared');
  const [succeeded] = await h.store.listEvents({ kind: 'renewal.succeeded' });
  assert.equal((succeeded.data as { version_id: string }).version_id, v2.id);
});

test('a commit that fails midway leaves nothing of the issuance visible', async (t) => {
  const h = await setup(t);
  const cert = await h.certificates.create(h.spec('web'), 'test');
  await subscribe(h.store, cert.id);
  await h.store.setRenewalState(cert.id, {
    failures: { count: 1, lastFailureAt: h.clock.now().toISOString() },
  });
  // The last statement of the renewal's transaction fails: the event insert.
  h.sqlite.exec(`CREATE TRIGGER fail_renewal BEFORE INSERT ON events WHEN NEW.kind = 'renewal.succeeded'
    BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
  const before = await snapshot(h.store, cert.id);
  await assert.rejects(h.renewal.renewNow('web', 'admin:test'), /injected failure/);
  const requested = { at: h.clock.now().toISOString(), reason: 'manual' };
  assert.deepEqual(
    await snapshot(h.store, cert.id),
    { ...before, renewalState: { ...before.renewalState, reissueRequested: requested } },
    'no version, deployment, state or event: only the request, stored before the order, stays',
  );
  // The CA counted that order all the same: it is stored on its own.
  assert.equal(await h.budgetOrders({ exactSetOf: 'web' }), 2);
  h.sqlite.exec('DROP TRIGGER fail_renewal');
  await h.renewal.renewNow('web', 'admin:test');
  assert.equal(await h.budgetOrders({ exactSetOf: 'web' }), 3);
});

test('a first issuance is checked against the budget and counted in it', async (t) => {
  const h = await setup(t, 1);
  await h.certificates.create(h.spec('one'), 'test');
  assert.equal(await h.budgetOrders('NewOrdersPerAccount'), 1, 'the first version counts');
  await assert.rejects(h.certificates.create(h.spec('two'), 'test'), (e: CertfleetError) => {
    refusal('RATE_LIMITED')(e);
    assert.match(e.message, /New Orders per Account allows 1 per 1h/);
    return true;
  });
  assert.equal(await h.store.getCertificate('two'), undefined, 'no certificate is left behind');
  assert.deepEqual(await h.store.listEvents({ subject: 'certificate:two' }), []);
});

test('concurrent first issuances cannot overshoot the budget together', async (t) => {
  const h = await setup(t, 5); // 4 usable for non-urgent issuance, 1 kept for urgent renewals
  const results = await Promise.allSettled(
    Array.from({ length: 8 }, (_, i) => h.certificates.create(h.spec(`c${i}`), 'test')),
  );
  const refused = results.filter((r) => r.status === 'rejected');
  assert.equal(results.length - refused.length, 4);
  for (const r of refused) refusal('RATE_LIMITED')(r.reason);
  assert.equal((await h.store.listCertificates()).length, 4);
  assert.equal(await h.budgetOrders('NewOrdersPerAccount'), 4);
});

test('a name the CA rejects leaves no certificate, only the version.issue_failed event', async (t) => {
  const h = await setup(t);
  h.ctx.issuers.set('picky', {
    kind: 'test',
    issue: async () => {
      throw new CertfleetError('ACME_ERROR', 'rejectedIdentifier: no', 'use another name');
    },
  } satisfies Issuer);
  await assert.rejects(h.certificates.create(h.spec('nope', 'picky'), 'test'), refusal('ACME_ERROR'));
  assert.equal(await h.store.getCertificate('nope'), undefined);
  const events = await h.store.listEvents({ subject: 'certificate:nope' });
  assert.deepEqual(
    events.map((e) => e.kind),
    ['version.issue_failed'],
  );
});

test('concurrent renewal-state changes are each applied to the latest state (none is lost)', async (t) => {
  const h = await setup(t);
  const cert = await h.certificates.create(h.spec('web'), 'test');
  await Promise.all(
    Array.from({ length: 20 }, () =>
      h.store.commitRenewal({
        certificate: { id: cert.id },
        actor: 'test',
        renewalState: storeChange(afterFailed(h.clock.now(), 'boom')),
      }),
    ),
  );
  assert.equal(((await h.store.getRenewalState(cert.id)) as RenewalState).failures?.count, 20);
});

test('a revoked certificate whose replacement failed stays due until the planner replaces it', async (t) => {
  const h = await setup(t);
  const cert = await h.certificates.create(h.spec('web', 'internal'), 'test');
  const revoked = (await h.store.currentVersion(cert.id))!;
  const ca = h.ctx.issuers.get('internal')!;
  h.ctx.issuers.set('internal', {
    kind: 'internal',
    issue: async () => {
      throw new CertfleetError('UNREACHABLE', 'the CA is down', 'retry later');
    },
  });
  const result = await h.renewal.revoke('web', 'keyCompromise', 'admin:test');
  assert.equal(result.revoked.serial, revoked.serial);
  assert.equal(result.renewalError?.code, 'UNREACHABLE');

  const { input } = await h.renewal.planInputFor(cert);
  const waiting = evaluateRenewal(input);
  assert.equal(waiting.reason, 'BackingOff');
  assert.match(waiting.message, /Wanted because: The current version of web was revoked \(keyCompromise\)/);
  h.clock.advance(2 * 60_000);
  assert.equal(evaluateRenewal((await h.renewal.planInputFor(cert)).input).reason, 'Revoked');

  h.ctx.issuers.set('internal', ca);
  const report = await new PlannerService(h.renewal, { intervalMs: HOUR_MS }).runOnce();
  assert.deepEqual(report.issued, ['web']);
  assert.notEqual((await h.store.currentVersion(cert.id))!.id, revoked.id);
  assert.equal(evaluateRenewal((await h.renewal.planInputFor(cert)).input).reason, 'NotDue');
});

test("a renew now is stored before its order: when its hub dies mid-order, the next leader's planner issues it", async (t) => {
  const h = await setup(t);
  const cert = await h.certificates.create(h.spec('web', 'internal'), 'test');
  const first = (await h.store.currentVersion(cert.id))!;
  const ca = h.ctx.issuers.get('internal')!;
  let ordered!: () => void;
  const inFlight = new Promise<void>((r) => (ordered = r));
  // the CA never answers: the order is still in flight when its hub "dies" (this attempt never settles)
  h.ctx.issuers.set('internal', {
    kind: 'internal',
    issue: () => {
      ordered();
      return new Promise(() => {});
    },
  });
  void h.renewal.renewNow('web', 'admin:test');
  await inFlight;
  assert.equal(
    ((await h.store.getRenewalState(cert.id)) as RenewalState).reissueRequested?.reason,
    'manual',
    'the request is in the store while its order runs',
  );

  // the next leader: an issuance and a planner of its own over the same store, the CA answering again
  h.ctx.issuers.set('internal', ca);
  const next = new RenewalService(
    h.ctx,
    new Issuance(h.ctx, { rateLimits: h.renewal.issuance.rateLimits }),
    h.renewal.acme,
  );
  const report = await new PlannerService(next, { intervalMs: HOUR_MS }).runOnce();
  assert.deepEqual(report.issued, ['web']);
  assert.notEqual((await h.store.currentVersion(cert.id))!.id, first.id);
  assert.deepEqual(await h.store.getRenewalState(cert.id), {}, 'the request is settled by the version');
  assert.equal(evaluateRenewal((await next.planInputFor(cert)).input).reason, 'NotDue');
});
