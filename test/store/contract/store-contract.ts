/**
 * The Store contract: what every dialect must do, whatever it stores in. `storeContract(name, open)` registers the
 * suite for one dialect; `open` gives a fresh, empty, migrated store (and is told to clean up through the context).
 * SQLite runs it in test/store/sqlite-contract.test.ts; the PostgreSQL dialect will run the same suite.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { isCertfleetError } from '../../../src/core/errors.ts';
import type { StoreEvent } from '../../../src/store/store-events.ts';
import type { NewVersion, Store, SubscriptionSpec } from '../../../src/store/store.ts';
import { onCleanup } from '../../helpers/cleanup.ts';

export type OpenStore = (t: TestContext) => Promise<Store>;

const cert = (name: string) => ({
  name,
  sans: [`${name}.example.test`],
  keyType: 'ecdsa-p256' as const,
  issuer: 'internal',
  lifetimeDays: 30,
});
const endpoint = (name: string) => ({ name, kind: 'agent' as const, probeTargets: [], labels: {} });
const spec = (path: string): SubscriptionSpec =>
  ({ outputs: [{ path, format: 'fullchain' }] }) as unknown as SubscriptionSpec;
const version = (): NewVersion => ({
  serial: randomBytes(8).toString('hex').toUpperCase(),
  fingerprint: randomBytes(32).toString('hex'),
  notBefore: new Date(Date.now() - 60_000).toISOString(),
  notAfter: new Date(Date.now() + 30 * 86_400_000).toISOString(),
  certPem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n',
  chainPem: '',
  sealedKey: 'v1.sealed-for-the-contract-test',
  issuer: 'internal',
});

const rejectsWith = async (p: Promise<unknown>, code: string) =>
  assert.rejects(p, (e: unknown) => isCertfleetError(e) && e.code === code);

/** Subscribed certificate `web` on endpoint `web1`, with one version. */
async function fleetOfOne(store: Store) {
  const c = await store.createCertificate(cert('web'), 'test');
  const e = await store.createEndpoint(endpoint('web1'), 'test');
  const { subscription } = await store.upsertSubscription(e.id, c.id, spec('/tmp/contract-web.pem'), 'test');
  const v = await store.addVersion(c.id, version(), 'test');
  return { cert: c, endpoint: e, subscription, version: v };
}

export function storeContract(dialect: string, open: OpenStore): void {
  describe(`Store contract (${dialect})`, () => {
    describe('uniqueness', () => {
      test('a second certificate or endpoint with a taken name is refused with ALREADY_EXISTS and changes nothing', async (t) => {
        const store = await open(t);
        await store.createCertificate(cert('web'), 'test');
        await store.createEndpoint(endpoint('web1'), 'test');
        const events = (await store.listEvents({ limit: 100 })).length;
        await rejectsWith(store.createCertificate(cert('web'), 'test'), 'ALREADY_EXISTS');
        await rejectsWith(store.createEndpoint(endpoint('web1'), 'test'), 'ALREADY_EXISTS');
        assert.equal((await store.listCertificates()).length, 1);
        assert.equal((await store.listEndpoints()).length, 1);
        assert.equal((await store.listEvents({ limit: 100 })).length, events);
      });

      test('one subscription per endpoint and certificate: a second upsert replaces the spec', async (t) => {
        const store = await open(t);
        const { cert: c, endpoint: e } = await fleetOfOne(store);
        const again = await store.upsertSubscription(e.id, c.id, spec('/tmp/contract-other.pem'), 'test');
        assert.equal(again.created, false);
        assert.equal(again.changed, true);
        const same = await store.upsertSubscription(e.id, c.id, spec('/tmp/contract-other.pem'), 'test');
        assert.equal(same.changed, false);
        assert.equal((await store.listSubscriptions()).length, 1);
      });

      test('API tokens: names unique across roles, listed without hashes, the last admin token not revocable', async (t) => {
        const store = await open(t);
        const hash = () => randomBytes(32).toString('hex');
        const admin = await store.createToken({ kind: 'admin', name: 'bootstrap', hash: hash() }, 'test');
        await store.createToken({ kind: 'read', name: 'grafana', hash: hash() }, 'test');
        await store.createToken({ kind: 'enroll', name: 'enroll:web1', hash: hash() }, 'test');
        await store.createToken({ kind: 'enroll', name: 'enroll:web1', hash: hash() }, 'test'); // several per endpoint
        await rejectsWith(
          store.createToken({ kind: 'admin', name: 'grafana', hash: hash() }, 'test'),
          'ALREADY_EXISTS',
        );
        assert.deepEqual(
          (await store.listTokens()).map((r) => [r.name, r.kind]),
          [
            ['bootstrap', 'admin'],
            ['grafana', 'read'],
          ],
        );
        assert.ok((await store.listTokens()).every((r) => !('hash' in r)));
        await store.touchToken(admin.id, '2030-01-01T00:00:00.000Z');
        assert.equal((await store.listTokens())[0].lastUsedAt, '2030-01-01T00:00:00.000Z');
        await rejectsWith(store.revokeToken('bootstrap', 'test'), 'CONFLICT');
        await rejectsWith(store.revokeToken('nobody', 'test'), 'NOT_FOUND');
        await store.revokeToken('grafana', 'test');
        assert.deepEqual(
          (await store.listTokens()).map((r) => r.name),
          ['bootstrap'],
        );
        const revoked = await store.listEvents({ kind: 'token.revoked' });
        assert.deepEqual(
          revoked.map((e) => [e.subject, e.actor]),
          [['token:grafana', 'test']],
        );
      });

      test('a single-use token is consumed exactly once, even by concurrent callers', async (t) => {
        const store = await open(t);
        const token = await store.createToken(
          { kind: 'enroll', name: 'web1', hash: randomBytes(32).toString('hex') },
          'test',
        );
        const at = new Date().toISOString();
        const wins = await Promise.all(Array.from({ length: 8 }, () => store.consumeToken(token.id, at)));
        assert.equal(wins.filter(Boolean).length, 1);
      });
    });

    describe('transactions', () => {
      test('a refused delete changes nothing: the certificate, its subscription and version stay', async (t) => {
        const store = await open(t);
        const { cert: c } = await fleetOfOne(store);
        const revision = await store.revision();
        await rejectsWith(store.deleteCertificate('web', 'test'), 'CONFLICT');
        assert.ok(await store.getCertificate('web'));
        assert.equal((await store.listSubscriptions({ certificateId: c.id })).length, 1);
        assert.equal((await store.listVersions(c.id)).length, 1);
        assert.equal(await store.revision(), revision);
      });

      test('a batch of transitions is all or nothing', async (t) => {
        const store = await open(t);
        const { subscription, version: v } = await fleetOfOne(store);
        const before = await store.getDeployment(subscription.id, v.id);
        await assert.rejects(
          store.transitionDeployments([
            {
              subscriptionId: subscription.id,
              versionId: v.id,
              state: 'delivered',
              info: {},
              actor: 'agent:web1',
            },
            {
              subscriptionId: 'no-such-subscription',
              versionId: v.id,
              state: 'delivered',
              info: {},
              actor: 'agent:web1',
            },
          ]),
        );
        assert.deepEqual(await store.getDeployment(subscription.id, v.id), before);
      });

      test('a batch of many agents’ reports moves each deployment through its moves in order, one event per move in batch order', async (t) => {
        const store = await open(t);
        const c = await store.createCertificate(cert('web'), 'test');
        const subs: Array<{ id: string }> = [];
        for (const name of ['web1', 'web2', 'web3']) {
          const e = await store.createEndpoint(endpoint(name), 'test');
          subs.push(
            (await store.upsertSubscription(e.id, c.id, spec(`/tmp/${name}.pem`), 'test')).subscription,
          );
        }
        const v = await store.addVersion(c.id, version(), 'test');
        const published: StoreEvent[] = [];
        t.after(store.events.on('deployment.transitioned', (e) => published.push(e)));
        const move = (i: number, state: 'delivered' | 'installed') => ({
          subscriptionId: subs[i].id,
          versionId: v.id,
          state,
          info: {},
          actor: `agent:web${i + 1}`,
        });
        const batch = [
          move(0, 'delivered'),
          move(1, 'delivered'),
          move(0, 'installed'),
          move(2, 'delivered'),
        ];
        const out = await store.transitionDeployments(batch);
        assert.deepEqual(
          out.map((d) => d.state),
          ['delivered', 'delivered', 'installed', 'delivered'],
        );
        assert.equal((await store.getDeployment(subs[0].id, v.id))?.state, 'installed');
        assert.equal((await store.getDeployment(subs[1].id, v.id))?.state, 'delivered');
        const events = await store.listEvents({ kind: 'deployment.', limit: 100 });
        const moves = events.filter((e) => e.kind !== 'deployment.pending');
        assert.deepEqual(
          moves.map((e) => [e.kind, e.actor, e.data.from]),
          [
            ['deployment.delivered', 'agent:web1', 'pending'],
            ['deployment.delivered', 'agent:web2', 'pending'],
            ['deployment.installed', 'agent:web1', 'delivered'],
            ['deployment.delivered', 'agent:web3', 'pending'],
          ],
        );
        assert.ok(moves.every((e) => e.subject === 'certificate:web'));
        assert.deepEqual(
          published.map((e) => (e.kind === 'deployment.transitioned' ? [e.from, e.deployment.state] : [])),
          [
            ['pending', 'delivered'],
            ['pending', 'delivered'],
            ['delivered', 'installed'],
            ['pending', 'delivered'],
          ],
        );
      });

      test('the current version is the last one committed, read back as stored, and none once its certificate is gone', async (t) => {
        const store = await open(t);
        const { cert: c, version: first } = await fleetOfOne(store);
        assert.deepEqual(await store.currentVersion(c.id), first);
        await store.setRenewalState(c.id, { failures: 2 });
        const { version: second } = await store.commitRenewal({
          certificate: { id: c.id },
          actor: 'test',
          version: version(),
          renewalState: (state) => ({ ...state, renewed: true }),
        });
        const current = (await store.currentVersion(c.id))!;
        assert.deepEqual(current, second);
        assert.deepEqual(
          (await store.listVersions(c.id)).find((v) => v.id === second!.id),
          current,
        );
        assert.deepEqual(await store.getRenewalState(c.id), { failures: 2, renewed: true });
        current.certPem = 'changed by a caller';
        assert.deepEqual(await store.currentVersion(c.id), second, "a caller's copy is its own");
        await store.deleteCertificate('web', 'test', { force: true });
        assert.equal(await store.currentVersion(c.id), undefined);
      });

      test('a forced delete removes subscriptions, versions and deployments in one step', async (t) => {
        const store = await open(t);
        const { cert: c } = await fleetOfOne(store);
        await store.deleteCertificate('web', 'test', { force: true });
        assert.equal(await store.getCertificate('web'), undefined);
        assert.deepEqual(await store.listSubscriptions({ certificateId: c.id }), []);
        assert.deepEqual(await store.listVersions(c.id), []);
      });
    });

    describe('revision', () => {
      test('every change to what agents should serve bumps the revision by one; reads and unrelated writes do not', async (t) => {
        const store = await open(t);
        const r0 = await store.revision();
        const c = await store.createCertificate(cert('web'), 'test');
        const e = await store.createEndpoint(endpoint('web1'), 'test');
        assert.equal(await store.revision(), r0, 'nothing subscribed yet');
        const { subscription } = await store.upsertSubscription(
          e.id,
          c.id,
          spec('/tmp/contract-a.pem'),
          'test',
        );
        const r1 = await store.revision();
        assert.equal(r1, r0 + 1);
        const v = await store.addVersion(c.id, version(), 'test');
        assert.equal(await store.revision(), r1 + 1);
        await store.requestRedeploy(subscription.id, v.id, { overrideWindow: false }, 'test');
        assert.equal(await store.revision(), r1 + 2);
        await store.setMeta('unrelated', 'x');
        await store.listCertificates();
        assert.equal(await store.revision(), r1 + 2);
        await store.deleteSubscription(subscription.id, 'test');
        assert.equal(await store.revision(), r1 + 3);
      });

      test('concurrent bumps through one store are never lost', async (t) => {
        const store = await open(t);
        const { cert: c, endpoint: e } = await fleetOfOne(store);
        const before = await store.revision();
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.upsertSubscription(e.id, c.id, spec(`/tmp/c-${i}.pem`), 'test'),
          ),
        );
        assert.equal(await store.revision(), before + 20);
      });
    });

    describe('meta', () => {
      test('initMeta keeps the first whole set; setMeta overwrites; deleteMeta removes; a missing key is undefined', async (t) => {
        const store = await open(t);
        assert.equal(await store.getMeta('missing'), undefined);
        const first = await store.initMeta({ a: '1', b: '2' });
        assert.deepEqual(first, { a: '1', b: '2' });
        assert.deepEqual(await store.initMeta({ a: 'x', b: 'y' }), { a: '1', b: '2' });
        await store.setMeta('a', '3');
        assert.equal(await store.getMeta('a'), '3');
        await store.deleteMeta('a');
        await store.deleteMeta('a'); // a missing key is no error
        assert.equal(await store.getMeta('a'), undefined);
      });
    });

    describe('events', () => {
      test('each committed change is announced after its commit, in order; a refused change announces nothing', async (t) => {
        const store = await open(t);
        const seen: StoreEvent[] = [];
        const off = store.events.onAny((e) => seen.push(e));
        onCleanup(t, off);
        const { version: v } = await fleetOfOne(store);
        const kinds = seen.map((e) => e.kind);
        assert.ok(kinds.includes('version.added'), kinds.join());
        assert.ok(kinds.includes('subscription.changed'), kinds.join());
        const revisions = seen.flatMap((e) => (e.kind === 'revision.bumped' ? [e.revision] : []));
        assert.equal(revisions.length, 2, 'the subscription and the version each bumped once');
        assert.equal(revisions[1], revisions[0] + 1, 'announced in order, one apart');
        assert.equal(revisions[1], await store.revision());
        const added = seen.find((e) => e.kind === 'version.added');
        assert.equal(added?.kind === 'version.added' ? added.version.id : undefined, v.id);
        const count = seen.length;
        await rejectsWith(store.createCertificate(cert('web'), 'test'), 'ALREADY_EXISTS');
        await rejectsWith(store.deleteCertificate('web', 'test'), 'CONFLICT');
        assert.equal(seen.length, count);
      });

      test('every change is also in the audit log with its actor', async (t) => {
        const store = await open(t);
        await fleetOfOne(store);
        const events = await store.listEvents({ limit: 100 });
        for (const kind of ['certificate.created', 'endpoint.created', 'subscription.created'])
          assert.ok(
            events.some((e) => e.kind === kind && e.actor === 'test'),
            kind,
          );
      });

      test('a walk that passes the last id as the next afterId sees every event exactly once, oldest first', async (t) => {
        const store = await open(t);
        for (let i = 0; i < 25; i++) await store.createCertificate(cert(`walk-${i}`), 'test');
        const seen: number[] = [];
        for (let after = 0; ;) {
          const page = await store.listEvents({ kind: 'certificate.created', afterId: after, limit: 10 });
          if (page.length === 0) break;
          seen.push(...page.map((e) => e.id));
          after = page[page.length - 1].id;
        }
        const all = (await store.listEvents({ kind: 'certificate.created', limit: 1000 })).map((e) => e.id);
        assert.equal(all.length, 25);
        assert.deepEqual(seen, all);
        assert.deepEqual(
          [...all].sort((x, y) => x - y),
          all,
          'oldest first',
        );
        const tail = await store.listEvents({ kind: 'certificate.created', limit: 5 });
        assert.deepEqual(
          tail.map((e) => e.id),
          all.slice(-5),
          'without afterId: the newest, in order',
        );
      });
    });

    describe('deployment transitions', () => {
      test("a version's deployment walks the agent's and the probe's legal moves, each announced after its commit", async (t) => {
        const store = await open(t);
        const { subscription, version: v } = await fleetOfOne(store);
        const moves: string[] = [];
        const off = store.events.onAny((e) => {
          if (e.kind === 'deployment.transitioned') moves.push(`${e.from}->${e.deployment.state}`);
        });
        onCleanup(t, off);
        assert.equal((await store.getDeployment(subscription.id, v.id))?.state, 'pending');
        for (const to of ['delivered', 'installed', 'reloaded', 'verified'] as const) {
          await store.transitionDeployment(subscription.id, v.id, to, {}, 'agent:web1');
        }
        await store.transitionDeployment(subscription.id, v.id, 'diverged', {}, 'probe');
        assert.equal((await store.getDeployment(subscription.id, v.id))?.state, 'diverged');
        assert.deepEqual(moves, [
          'pending->delivered',
          'delivered->installed',
          'installed->reloaded',
          'reloaded->verified',
          'verified->diverged',
        ]);
      });

      test('a move the lifecycle table refuses is a CONFLICT that changes nothing and is recorded as a refusal', async (t) => {
        const store = await open(t);
        const { subscription, version: v } = await fleetOfOne(store);
        await store.transitionDeployment(subscription.id, v.id, 'installed', {}, 'agent:web1');
        const rolledBack = await store.transitionDeployment(
          subscription.id,
          v.id,
          'rolled_back',
          {},
          'agent:web1',
        );
        const revision = await store.revision();
        await rejectsWith(
          store.transitionDeployment(subscription.id, v.id, 'verified', {}, 'probe'),
          'CONFLICT',
        );
        assert.deepEqual(await store.getDeployment(subscription.id, v.id), rolledBack);
        assert.equal(await store.revision(), revision);
        const refusals = await store.listEvents({ kind: 'deployment.transition_refused' });
        assert.equal(refusals.length, 1);
        assert.equal(refusals[0].actor, 'probe');
        assert.deepEqual([refusals[0].data.from, refusals[0].data.to], ['rolled_back', 'verified']);
      });
    });

    describe('state shared by the hubs of a cluster', () => {
      test('an http-01 answer is readable once put, replaced by a second put and gone once deleted', async (t) => {
        const store = await open(t);
        assert.equal(await store.getHttp01Token('tok-1'), undefined);
        await store.putHttp01Token('tok-1', 'tok-1.thumb-a');
        assert.equal(await store.getHttp01Token('tok-1'), 'tok-1.thumb-a');
        await store.putHttp01Token('tok-1', 'tok-1.thumb-b');
        assert.equal(await store.getHttp01Token('tok-1'), 'tok-1.thumb-b');
        await store.deleteHttp01Token('tok-1');
        await store.deleteHttp01Token('tok-1'); // twice: no error
        assert.equal(await store.getHttp01Token('tok-1'), undefined);
      });

      test('endpoints touched together each keep their own last-seen time; the others are left alone', async (t) => {
        const store = await open(t);
        const [a, b, c] = [
          await store.createEndpoint(endpoint('web1'), 'test'),
          await store.createEndpoint(endpoint('web2'), 'test'),
          await store.createEndpoint(endpoint('web3'), 'test'),
        ];
        await store.touchEndpoints([
          { endpointId: a.id, at: '2026-01-02T03:04:05.000Z' },
          { endpointId: b.id, at: '2026-01-02T03:04:06.000Z' },
        ]);
        assert.equal(await store.lastSeen(a.id), '2026-01-02T03:04:05.000Z');
        assert.equal(await store.lastSeen(b.id), '2026-01-02T03:04:06.000Z');
        assert.equal(await store.lastSeen(c.id), undefined);
      });

      test('a nonce is accepted once and refused after, also when two callers race or a batch repeats it; expired ones are purged', async (t) => {
        const store = await open(t);
        const soon = new Date(Date.now() + 60_000).toISOString();
        const remember = async (key: string, expiresAt = soon) =>
          (await store.rememberNonces([{ key, expiresAt }])).has(key);
        assert.equal(await remember('ep-1:nonce-a'), true);
        assert.equal(await remember('ep-1:nonce-a'), false);
        assert.equal(await remember('ep-2:nonce-a'), true, 'keys are per endpoint');
        const race = await Promise.all(Array.from({ length: 8 }, () => remember('ep-1:nonce-b')));
        assert.equal(race.filter(Boolean).length, 1);
        const batch = await store.rememberNonces(
          ['ep-3:x', 'ep-1:nonce-a', 'ep-3:y', 'ep-3:x'].map((key) => ({ key, expiresAt: soon })),
        );
        assert.deepEqual(
          [...batch].sort(),
          ['ep-3:x', 'ep-3:y'],
          'new keys once each; the recorded one is not',
        );

        const past = new Date(Date.now() - 1000).toISOString();
        assert.equal(await remember('ep-1:old', past), true);
        assert.equal(await store.purgeNonces(new Date().toISOString()), 1);
        assert.equal(await remember('ep-1:nonce-a'), false, 'unexpired ones stay');
      });

      test('an order recorded before finalize is found by its certificate, or, while no certificate has its id, by its issuer and names (any order and case)', async (t) => {
        const store = await open(t);
        const web = await store.createCertificate(cert('web'), 'test');
        const order = (certificateId: string, sans: string[], issuer = 'acme-a') => ({
          certificateId,
          issuer,
          sans,
          orderUrl: `https://ca.test/order/${certificateId}`,
          sealedKey: 'v1.sealed',
          createdAt: new Date().toISOString(),
        });
        await store.recordAcmeOrder(order(web.id, ['web.example.test']));
        await store.recordAcmeOrder(order('new-1', ['b.example.test', 'a.example.test']));
        assert.equal((await store.acmeOrder(web.id))?.orderUrl, `https://ca.test/order/${web.id}`);
        assert.deepEqual(
          (await store.listAcmeOrders()).map((o) => o.certificateId).sort(),
          [web.id, 'new-1'].sort(),
        );
        const found = await store.unclaimedAcmeOrder('acme-a', ['A.example.test', 'b.example.test']);
        assert.equal(found?.certificateId, 'new-1');
        assert.deepEqual(found?.sans, ['a.example.test', 'b.example.test']);
        assert.equal(
          await store.unclaimedAcmeOrder('acme-b', ['a.example.test', 'b.example.test']),
          undefined,
        );
        assert.equal(await store.unclaimedAcmeOrder('acme-a', ['a.example.test']), undefined);
        assert.equal(
          await store.unclaimedAcmeOrder('acme-a', ['web.example.test']),
          undefined,
          "an order whose certificate exists is that certificate's",
        );
      });
    });

    describe('emergency campaigns', () => {
      test('a campaign starts in one commit: its items with their baseline versions, each certificate marked, one event', async (t) => {
        const store = await open(t);
        const { cert: web, version: v } = await fleetOfOne(store);
        const api = await store.createCertificate(cert('api'), 'test');
        const seen: StoreEvent[] = [];
        store.events.on('campaign.changed', (e) => seen.push(e));
        const started = await store.createCampaign(
          {
            id: 'c1',
            selector: { kind: 'issuer', value: 'internal' },
            options: { rekey: true, overrideWindows: false, reason: 'CA incident' },
            items: [{ certificateId: web.id, baselineVersionId: v.id }, { certificateId: api.id }],
          },
          (s) => ({ ...s, reissueRequested: { reason: 'campaign c1' } }),
          'admin:ops',
        );
        assert.equal(started.state, 'running');
        assert.deepEqual((await store.getCampaign('c1'))?.items.length, 2);
        const item = (await store.getCampaign('c1'))!.items.find((i) => i.certificateId === web.id);
        assert.equal(item?.baselineVersionId, v.id);
        assert.deepEqual(await store.getRenewalState(api.id), {
          reissueRequested: { reason: 'campaign c1' },
        });
        assert.deepEqual(
          (await store.listCampaigns({ state: 'running' })).map((c) => c.id),
          ['c1'],
        );
        const events = await store.listEvents({ kind: 'emergency.' });
        assert.deepEqual(
          events.map((e) => [e.kind, e.subject, e.actor]),
          [['emergency.campaign_started', 'campaign:c1', 'admin:ops']],
        );
        assert.deepEqual(
          seen.map((e) => e.kind === 'campaign.changed' && e.change),
          ['started'],
        );
      });

      test('a campaign naming a missing certificate stores nothing; finishing happens once', async (t) => {
        const store = await open(t);
        const { cert: web } = await fleetOfOne(store);
        const input = {
          id: 'c2',
          selector: { kind: 'all' as const },
          options: { rekey: false, overrideWindows: true, reason: 'x' },
          items: [{ certificateId: web.id }, { certificateId: 'no-such-certificate' }],
        };
        await rejectsWith(
          store.createCampaign(input, (s) => ({ ...s, marked: true }), 'test'),
          'CERTIFICATE_NOT_FOUND',
        );
        assert.equal(await store.getCampaign('c2'), undefined);
        assert.deepEqual(await store.getRenewalState(web.id), {});
        await store.createCampaign({ ...input, items: [{ certificateId: web.id }] }, (s) => s, 'test');
        assert.equal(await store.finishCampaign('c2', { verified: 1 }, 'planner'), true);
        assert.equal(await store.finishCampaign('c2', { verified: 1 }, 'planner'), false);
        const done = await store.getCampaign('c2');
        assert.equal(done?.state, 'done');
        assert.deepEqual(done?.summary, { verified: 1 });
        assert.deepEqual(await store.listCampaigns({ state: 'running' }), []);
        assert.equal((await store.listEvents({ kind: 'emergency.campaign_finished' })).length, 1);
      });

      test('cancelling applies the unmark to every item in the same commit, once; a cancelled campaign is not finished', async (t) => {
        const store = await open(t);
        const { cert: web } = await fleetOfOne(store);
        const seen: string[] = [];
        onCleanup(
          t,
          store.events.on('campaign.changed', (e) => seen.push(e.change)),
        );
        const input = {
          id: 'c3',
          selector: { kind: 'all' as const },
          options: { rekey: false, overrideWindows: false, reason: 'x' },
          items: [{ certificateId: web.id }],
        };
        await store.createCampaign(input, (s) => ({ ...s, marked: 'c3' }), 'test');
        assert.deepEqual(await store.getRenewalState(web.id), { marked: 'c3' });
        const unmark = ({ marked: _m, ...rest }: Record<string, unknown>) => rest;
        assert.equal(await store.cancelCampaign('c3', unmark, { issued: 0 }, 'admin:a'), true);
        assert.equal(await store.cancelCampaign('c3', unmark, { issued: 0 }, 'admin:a'), false);
        assert.equal(await store.finishCampaign('c3', { verified: 1 }, 'planner'), false);
        const cancelled = await store.getCampaign('c3');
        assert.equal(cancelled?.state, 'cancelled');
        assert.deepEqual(cancelled?.summary, { issued: 0 });
        assert.deepEqual(await store.getRenewalState(web.id), {});
        assert.deepEqual(await store.listCampaigns({ state: 'running' }), []);
        const events = await store.listEvents({ kind: 'emergency.campaign_cancelled' });
        assert.deepEqual(
          events.map((e) => [e.actor, e.subject]),
          [['admin:a', 'campaign:c3']],
        );
        assert.deepEqual(seen, ['started', 'cancelled']);
      });
    });
  });
}
