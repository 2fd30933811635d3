import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { CertfleetError } from '../../src/core/errors.ts';
import type { Store } from '../../src/store/store.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';
import { onCleanup } from '../helpers/cleanup.ts';

const clock = new ManualClock(Date.parse('2026-01-10T00:00:00Z'));

async function openStore(t: TestContext): Promise<Store> {
  const store = await openSqliteStore(':memory:', clock);
  onCleanup(t, () => store.close());
  return store;
}

const cert = (store: Store, name: string) =>
  store.createCertificate(
    { name, sans: [`${name}.example.test`], keyType: 'ecdsa-p256', issuer: 'internal', lifetimeDays: 30 },
    'test',
  );

const version = (store: Store, certificateId: string, serial: string) =>
  store.addVersion(
    certificateId,
    {
      serial,
      fingerprint: serial.repeat(64).slice(0, 64),
      notBefore: '2026-01-01T00:00:00.000Z',
      notAfter: '2026-01-31T00:00:00.000Z',
      certPem: 'CERT',
      chainPem: 'CHAIN',
      sealedKey: 'SEALED',
      issuer: 'internal',
    },
    'test',
  );

const endpoint = (store: Store, name: string) =>
  store.createEndpoint(
    { name, kind: 'agent', probeTargets: [{ host: `${name}.example.test`, port: 443 }], labels: {} },
    'test',
  );

const spec = { outputs: [{ path: '/etc/ssl/x.pem', format: 'fullchain' as const }] };

/** Certificates a (issued), b (never issued), c (issued, subscribed by nobody); endpoints e1, e2, e3. */
async function fleetFixture(t: TestContext) {
  const store = await openStore(t);
  const [a, b, c] = [await cert(store, 'a'), await cert(store, 'b'), await cert(store, 'c')];
  const va = await version(store, a.id, 'a1');
  await version(store, c.id, 'c1');
  const [e1, e2, e3] = [
    await endpoint(store, 'e1'),
    await endpoint(store, 'e2'),
    await endpoint(store, 'e3'),
  ];
  const ae1 = (await store.upsertSubscription(e1.id, a.id, spec, 'test')).subscription;
  const ae2 = (await store.upsertSubscription(e2.id, a.id, spec, 'test')).subscription;
  const be1 = (await store.upsertSubscription(e1.id, b.id, spec, 'test')).subscription;
  await store.transitionDeployment(ae1.id, va.id, 'installed', { reason: 'written' }, 'agent:e1');
  await store.touchEndpoint(e1.id, '2026-01-09T12:00:00.000Z');
  await store.saveProbeResults([
    {
      endpointId: e1.id,
      targetKey: 'z.example.test:443',
      source: 'hub',
      at: '2026-01-09T13:00:00.000Z',
      ok: false,
      errorKind: 'timeout',
      errorMessage: 'no answer',
    },
    {
      endpointId: e1.id,
      targetKey: 'e1.example.test:443',
      source: 'hub',
      at: '2026-01-09T13:00:00.000Z',
      ok: true,
      fingerprint: va.fingerprint,
      notAfter: va.notAfter,
    },
  ]);
  return { store, a, b, c, va, e1, e2, e3, ae1, ae2, be1 };
}

describe('fleet read model (store)', () => {
  test('one row per subscription, by certificate then endpoint, with version, deployment, contact and probes', async (t) => {
    const { store, va, ae1, ae2, be1 } = await fleetFixture(t);
    const { items, next } = await store.fleet();
    assert.equal(next, undefined, 'an unpaged read is the whole list');
    assert.deepEqual(
      items.map((r) => `${r.certificate.name}/${r.endpoint.name}`),
      ['a/e1', 'a/e2', 'b/e1'],
      'certificate c has no subscription, so no fleet row',
    );
    const [aOnE1, aOnE2, bOnE1] = items;

    assert.equal(aOnE1.subscription.id, ae1.id);
    assert.deepEqual(aOnE1.subscription.outputs, spec.outputs);
    assert.equal(aOnE1.current?.id, va.id);
    assert.equal(aOnE1.current?.serial, 'a1');
    assert.ok(!('certPem' in aOnE1.current!), 'lists never carry PEMs');
    assert.equal(aOnE1.deployment?.state, 'installed');
    assert.equal(aOnE1.deployment?.reason, 'written');
    assert.equal(aOnE1.lastSeenAt, '2026-01-09T12:00:00.000Z');
    assert.equal(aOnE1.endpointSubscriptions, 2, 'e1 holds a and b');
    assert.deepEqual(
      aOnE1.probes.map((p) => [p.targetKey, p.ok, p.fingerprint ?? p.errorKind]),
      [
        ['e1.example.test:443', true, va.fingerprint],
        ['z.example.test:443', false, 'timeout'],
      ],
    );

    assert.equal(aOnE2.subscription.id, ae2.id);
    assert.equal(
      aOnE2.deployment?.state,
      'pending',
      'subscribing to an issued certificate starts a deployment',
    );
    assert.equal(aOnE2.lastSeenAt, undefined, 'e2 never contacted the hub');
    assert.deepEqual(aOnE2.probes, [], 'e2 was never probed');
    assert.equal(aOnE2.endpointSubscriptions, 1);

    assert.equal(bOnE1.subscription.id, be1.id);
    assert.equal(bOnE1.current, undefined, 'b has no version yet');
    assert.equal(bOnE1.deployment, undefined, 'so nothing to deploy');
    assert.equal(bOnE1.probes.length, 2, 'probe results belong to the endpoint');
  });

  test('the deployment shown is the one of the current version', async (t) => {
    const { store, a } = await fleetFixture(t);
    const v2 = await version(store, a.id, 'a2');
    const { items } = await store.fleet({ certificateId: a.id });
    assert.deepEqual(
      items.map((r) => [r.endpoint.name, r.current?.id, r.deployment?.versionId, r.deployment?.state]),
      [
        ['e1', v2.id, v2.id, 'pending'],
        ['e2', v2.id, v2.id, 'pending'],
      ],
    );
  });

  test('filters by endpoint and by certificate', async (t) => {
    const { store, b, e1, e2 } = await fleetFixture(t);
    const names = async (f: Parameters<Store['fleet']>[0]) =>
      (await store.fleet(f)).items.map((r) => `${r.certificate.name}/${r.endpoint.name}`);
    assert.deepEqual(await names({ endpointId: e1.id }), ['a/e1', 'b/e1']);
    assert.deepEqual(await names({ endpointId: e2.id }), ['a/e2']);
    assert.deepEqual(await names({ certificateId: b.id }), ['b/e1']);
    assert.deepEqual(await names({ certificateId: b.id, endpointId: e2.id }), []);
  });

  test('pages walk every row exactly once, in order, even while rows are added behind the cursor', async (t) => {
    const { store, e3 } = await fleetFixture(t);
    const all = (await store.fleet()).items.map((r) => r.subscription.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.fleet({}, { limit: 1, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((r) => r.subscription.id));
      cursor = page.next;
      if (pages++ === 0) {
        // `0early` sorts before the cursor (a/e1): later pages neither repeat nor skip a row because of it
        await store.upsertSubscription(e3.id, (await cert(store, '0early')).id, spec, 'test');
      }
    } while (cursor);
    assert.deepEqual(seen, all);
    assert.equal(pages, 3, 'no empty trailing page');

    const certs = await store.certificateRows({ limit: 3 });
    assert.deepEqual(
      certs.items.map((r) => r.certificate.name),
      ['0early', 'a', 'b'],
    );
    const rest = await store.certificateRows({ limit: 3, cursor: certs.next! });
    assert.deepEqual(
      rest.items.map((r) => r.certificate.name),
      ['c'],
    );
    assert.equal(rest.next, undefined);
  });

  test('the status read is the same pages as the full read, with only what a status line shows', async (t) => {
    const { store, b, e1 } = await fleetFixture(t);
    const project = (r: Awaited<ReturnType<Store['fleet']>>['items'][number]) => ({
      subscriptionId: r.subscription.id,
      certificateName: r.certificate.name,
      endpointName: r.endpoint.name,
      endpointKind: r.endpoint.kind,
      ...(r.lastSeenAt ? { lastSeenAt: r.lastSeenAt } : {}),
      ...(r.current ? { current: r.current } : {}),
      ...(r.deployment
        ? {
            deployment: {
              state: r.deployment.state,
              ...(r.deployment.reason ? { reason: r.deployment.reason } : {}),
              detail: r.deployment.detail,
              updatedAt: r.deployment.updatedAt,
            },
          }
        : {}),
    });
    assert.deepEqual((await store.fleetStatus()).items, (await store.fleet()).items.map(project));
    for (const filter of [{ certificateId: b.id }, { endpointId: e1.id }]) {
      assert.deepEqual(
        (await store.fleetStatus(filter)).items,
        (await store.fleet(filter)).items.map(project),
      );
    }
    const first = await store.fleetStatus({}, { limit: 2 });
    const full = await store.fleet({}, { limit: 2 });
    assert.equal(first.next, full.next, 'one cursor for both reads');
    assert.deepEqual(
      (await store.fleetStatus({}, { limit: 2, cursor: first.next! })).items,
      (await store.fleet({}, { limit: 2, cursor: full.next! })).items.map(project),
    );
  });

  test('the subscription read is the same pages as the full read, with only what a subscription view shows', async (t) => {
    const { store, b, e1 } = await fleetFixture(t);
    const project = (r: Awaited<ReturnType<Store['fleet']>>['items'][number]) => ({
      subscription: r.subscription,
      certificateName: r.certificate.name,
      endpointName: r.endpoint.name,
      endpointKind: r.endpoint.kind,
      ...(r.deployment ? { deployment: r.deployment } : {}),
    });
    const all = await store.subscriptionRows();
    assert.ok(
      all.items.some((r) => r.deployment),
      'the fixture has deployments to compare',
    );
    assert.deepEqual(all.items, (await store.fleet()).items.map(project));
    for (const filter of [{ certificateId: b.id }, { endpointId: e1.id }]) {
      assert.deepEqual(
        (await store.subscriptionRows(filter)).items,
        (await store.fleet(filter)).items.map(project),
      );
    }
    const first = await store.subscriptionRows({}, { limit: 2 });
    const full = await store.fleet({}, { limit: 2 });
    assert.equal(first.next, full.next, 'one cursor for both reads');
    assert.deepEqual(
      (await store.subscriptionRows({}, { limit: 2, cursor: first.next! })).items,
      (await store.fleet({}, { limit: 2, cursor: full.next! })).items.map(project),
    );
  });

  test('a cursor that is garbage or belongs to another list is refused with BAD_REQUEST and a hint', async (t) => {
    const { store } = await fleetFixture(t);
    const certCursor = (await store.certificateRows({ limit: 1 })).next!;
    for (const [read, cursor] of [
      [() => store.fleet({}, { limit: 1, cursor: 'not-a-cursor' }), 'garbage'],
      [() => store.fleet({}, { limit: 1, cursor: certCursor }), 'a certificates cursor'],
      [() => store.endpointRows({ limit: 1, cursor: certCursor }), 'a certificates cursor'],
    ] as const) {
      await assert.rejects(read(), (e: unknown) => {
        assert.ok(e instanceof CertfleetError, cursor);
        assert.equal(e.code, 'BAD_REQUEST');
        assert.match(e.hint, /x-next-cursor/);
        return true;
      });
    }
  });

  test('certificate rows carry the current version and the renewal state; endpoint rows contact and enrollment', async (t) => {
    const { store, a, c, e1 } = await fleetFixture(t);
    await store.setRenewalState(c.id, { failures: { count: 2 } });
    await store.setAgentPublicKey(e1.id, 'PUBLIC-KEY', 'test');
    const certs = (await store.certificateRows()).items;
    assert.deepEqual(
      certs.map((r) => [r.certificate.name, r.current?.serial ?? null, r.renewalState]),
      [
        ['a', 'a1', {}],
        ['b', null, {}],
        ['c', 'c1', { failures: { count: 2 } }],
      ],
    );
    assert.equal(certs[0].current?.certificateId, a.id);
    const endpoints = (await store.endpointRows()).items;
    assert.deepEqual(
      endpoints.map((r) => [r.endpoint.name, r.lastSeenAt ?? null, r.enrolled]),
      [
        ['e1', '2026-01-09T12:00:00.000Z', true],
        ['e2', null, false],
        ['e3', null, false],
      ],
    );
  });
});
