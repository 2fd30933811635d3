import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DAY_MS, ManualClock } from '../../src/core/clock.ts';
import { ariCertId } from '../../src/issuers/acme/ari.ts';
import { META } from '../../src/store/meta-catalogue.ts';
import { pebbleCaFile, pebbleIssuer, randomName, startAcmeHub } from '../helpers/acme-hub.ts';
import { startAcmeFront } from '../helpers/acme-front.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { freePort, startPebble } from '../helpers/pebble.ts';

test('planner loop in the hub, driven by a ManualClock', async (t) => {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const ari = await startAcmeFront(pebble);
  onCleanup(t, () => ari.stop());
  const caFile = await pebbleCaFile(t, pebble);
  const closed = await freePort();
  const clock = new ManualClock(Date.now());
  const tinyDirectory = pebble.directoryUrl.replace('localhost', '127.0.0.1');
  const hub = await startAcmeHub(
    t,
    {
      issuers: [
        pebbleIssuer(pebble, caFile, { name: 'ari', directoryUrl: ari.directoryUrl }),
        pebbleIssuer(pebble, caFile, {
          name: 'tiny',
          directoryUrl: tinyDirectory,
          rateLimits: { limits: { NewOrdersPerAccount: { count: 1, windowSeconds: 3600 } } },
        }),
        {
          name: 'down',
          kind: 'acme',
          directoryUrl: `https://127.0.0.1:${closed}/dir`,
          termsOfServiceAgreed: true,
          solvers: [{ kind: 'http-01' }],
        },
      ],
      http01: { listen: `127.0.0.1:${pebble.httpPort}` },
    },
    { clock },
  );
  const { store } = hub.ctx;
  const planner = hub.planner!;
  const events = async (kind: string, name: string) =>
    store.listEvents({ kind, subject: `certificate:${name}`, limit: 1000 });
  const certId = async (name: string) => (await store.getCertificate(name))!.id;
  const failures = async (name: string) =>
    ((await store.getRenewalState(await certId(name))).failures as { count: number } | undefined)?.count ?? 0;

  await t.test('an internal-CA certificate renews once the clock passes 2/3 of its lifetime', async () => {
    await hub.client.post('/api/v1/certificates', {
      name: 'short',
      sans: ['short.internal.test'],
      lifetimeDays: 30,
    });
    const first = (await store.currentVersion(await certId('short')))!;
    const start = clock.now().getTime();
    clock.set(start + 18 * DAY_MS); // jitter moves the point at most 5% (1.5 days) earlier than day 20
    let report = await planner.runOnce();
    assert.ok(!report.issued.includes('short'));
    assert.equal((await store.currentVersion(await certId('short')))!.id, first.id);
    clock.set(start + 20 * DAY_MS + 60_000);
    report = await planner.runOnce();
    assert.ok(report.issued.includes('short'), JSON.stringify(report));
    assert.notEqual((await store.currentVersion(await certId('short')))!.id, first.id);
    assert.equal((await events('renewal.succeeded', 'short')).length, 1);
    assert.equal(await store.getMeta(META.plannerLastRun.key), clock.now().toISOString());
    report = await planner.runOnce();
    assert.ok(!report.issued.includes('short'), 'the fresh version is not due');
  });

  await t.test('failures are recorded and retried with backoff, then cleared', async () => {
    await hub.certificates.create(
      { name: 'flaky', sans: [randomName()], keyType: 'ecdsa-p256', issuer: 'down', lifetimeDays: 90 },
      'test',
      { issue: false },
    );
    let report = await planner.runOnce();
    assert.ok(report.failed.some((f) => f.certificate === 'flaky' && /127\.0\.0\.1/.test(f.error)));
    assert.equal(await failures('flaky'), 1);
    report = await planner.runOnce(); // within the 1-minute backoff: no attempt
    assert.ok(!report.failed.some((f) => f.certificate === 'flaky'));
    assert.equal(await failures('flaky'), 1);
    const plan = await hub.client.get<{
      entries: Array<{ certificateName: string; decision: { reason: string } }>;
    }>('/api/v1/plan');
    assert.equal(plan.entries.find((e) => e.certificateName === 'flaky')!.decision.reason, 'BackingOff');
    clock.advance(61_000);
    await planner.runOnce();
    assert.equal(await failures('flaky'), 2);
    clock.advance(61_000); // backoff is now 2 minutes
    await planner.runOnce();
    assert.equal(await failures('flaky'), 2);
    assert.equal((await events('renewal.failed', 'flaky')).length, 2);
    // Fixed: pointed at a working CA, the next attempt after the backoff succeeds and clears the failures.
    await store.updateCertificate('flaky', { issuer: 'ari' }, 'test');
    clock.advance(60_000);
    report = await planner.runOnce();
    assert.ok(report.issued.includes('flaky'), JSON.stringify(report));
    assert.equal(await failures('flaky'), 0);
  });

  await t.test("the CA's ARI window drives renewal and the new order carries replaces", async () => {
    ari.window = {
      start: new Date(clock.now().getTime() + 30 * DAY_MS),
      end: new Date(clock.now().getTime() + 31 * DAY_MS),
      retryAfterSeconds: 60,
    };
    await hub.client.post('/api/v1/certificates', { name: 'arid', sans: [randomName()], issuer: 'ari' });
    const first = (await store.currentVersion(await certId('arid')))!;
    const askedFor = () => ari.renewalInfoRequests.filter((id) => id === ariCertId(first.certPem)).length;
    let report = await planner.runOnce();
    assert.ok(!report.issued.includes('arid'));
    assert.equal(askedFor(), 1, 'renewalInfo was fetched');
    await planner.runOnce();
    assert.equal(askedFor(), 1, 'Retry-After (60 s) is honoured: no refetch before it');
    // The CA moves the window to now: the point picked in it has come.
    clock.advance(61_000);
    ari.window = {
      start: new Date(clock.now().getTime() - 2 * 3_600_000),
      end: new Date(clock.now().getTime() + 1),
    };
    report = await planner.runOnce();
    assert.ok(report.issued.includes('arid'), JSON.stringify(report));
    // 'flaky' (moved to this CA above) may renew in the same run, in either order: look for arid's order.
    assert.ok(ari.orderReplaces.includes(ariCertId(first.certPem)), JSON.stringify(ari.orderReplaces));
    const ok = await events('renewal.succeeded', 'arid');
    assert.equal((ok.at(-1)!.data as { reason: string; ari_renewal: boolean }).reason, 'AriWindow');
    assert.equal((ok.at(-1)!.data as { ari_renewal: boolean }).ari_renewal, true);
  });

  await t.test('a spent budget defers a non-urgent issuance with one renewal.deferred event', async () => {
    for (const name of ['tiny-a', 'tiny-b'])
      await hub.certificates.create(
        { name, sans: [randomName()], keyType: 'ecdsa-p256', issuer: 'tiny', lifetimeDays: 90 },
        'test',
        { issue: false },
      );
    let report = await planner.runOnce();
    assert.deepEqual(
      report.issued.filter((n) => n.startsWith('tiny')),
      ['tiny-a'],
    );
    const deferred = report.deferred.find((d) => d.certificate === 'tiny-b');
    assert.equal(deferred?.limit, 'NewOrdersPerAccount');
    const ev = await events('renewal.deferred', 'tiny-b');
    assert.equal(ev.length, 1);
    const data = ev[0].data as { limit: string; frees_at: string; message: string };
    assert.equal(data.limit, 'NewOrdersPerAccount');
    assert.ok(new Date(data.frees_at).getTime() > clock.now().getTime());
    assert.match(data.message, /deferring issuance until/);
    report = await planner.runOnce();
    assert.ok(report.deferred.some((d) => d.certificate === 'tiny-b'));
    assert.equal((await events('renewal.deferred', 'tiny-b')).length, 1, 'announced once');
    assert.equal(
      (await store.rateLimitOrdersAfter(tinyDirectory, 0)).filter((o) => o.outcome === 'issued').length,
      1,
      "tiny-a's order is stored",
    );
    // An hour later the slot frees and the deferred certificate is issued.
    clock.advance(3_601_000);
    report = await planner.runOnce();
    assert.ok(report.issued.includes('tiny-b'), JSON.stringify(report));
  });
});
