import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertfleetError } from '../../src/core/errors.ts';
import { SealedAccountStore } from '../../src/hub/acme/sealed-account-store.ts';
import { splitPemCertificates } from '../../src/pki/inspect.ts';
import { pebbleCaFile, pebbleIssuer, randomName, startAcmeHub } from '../helpers/acme-hub.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { freePort, startPebble } from '../helpers/pebble.ts';
import { assertOpensslVerifies } from '../helpers/openssl-verify.ts';

test('hub with ACME issuers against real Pebble', async (t) => {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const caFile = await pebbleCaFile(t, pebble);
  const closed = await freePort();
  // Same pebble under other directory URLs, so each issuer has its own (not yet registered) account.
  const ipDirectory = pebble.directoryUrl.replace('localhost', '127.0.0.1');
  const hub = await startAcmeHub(
    t,
    {
      issuers: [
        pebbleIssuer(pebble, caFile),
        {
          name: 'down',
          kind: 'acme',
          directoryUrl: `https://127.0.0.1:${closed}/dir`,
          termsOfServiceAgreed: true,
          solvers: [{ kind: 'http-01' }],
        },
        pebbleIssuer(pebble, caFile, {
          name: 'notos',
          directoryUrl: ipDirectory,
          termsOfServiceAgreed: false,
        }),
        pebbleIssuer(pebble, caFile, {
          name: 'badeab',
          directoryUrl: `${pebble.directoryUrl}?eab`,
          eab: { kid: 'unknown-kid', hmacKeyRef: 'env:TEST_EAB_HMAC' },
        }),
      ],
      http01: { listen: `127.0.0.1:${pebble.httpPort}` },
    },
    { env: { TEST_EAB_HMAC: 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W' } },
  );
  const { store } = hub.ctx;
  const versionsIssued = async (name: string) =>
    (await store.listEvents({ kind: 'version.issued', subject: `certificate:${name}`, limit: 1000 })).length;
  const web = randomName('web-');

  await t.test('http-01 answered by the hub listener; the chain verifies against pebble root', async () => {
    const created = await hub.client.post<{ current: { serial: string } }>('/api/v1/certificates', {
      name: 'web',
      sans: [web],
      issuer: 'pebble',
    });
    assert.ok(created.current.serial);
    const shown = await hub.client.get<{ currentPem: string }>('/api/v1/certificates/web');
    const [leaf, ...chain] = splitPemCertificates(shown.currentPem);
    assert.ok(chain.length >= 1, 'chain stored with the version');
    await assertOpensslVerifies(leaf, chain, await pebble.issuingRootPem());
  });

  await t.test('the account key is sealed: no key bytes in clear in the database', async () => {
    const account = await new SealedAccountStore(store, hub.ctx.sealer).load(pebble.directoryUrl);
    assert.ok(account?.accountUrl && account.accountKeyPem.includes('PRIVATE KEY'));
    const body = account.accountKeyPem
      .split('\n')
      .filter((l) => l && !l.startsWith('-----'))
      .join('');
    let db = '';
    for (const f of ['hub.db', 'hub.db-wal'])
      db += await readFile(join(hub.dataDir, f), 'latin1').catch(() => '');
    assert.ok(db.length > 0);
    assert.ok(!db.includes('PRIVATE KEY'), 'no PEM private key in the DB files');
    for (let i = 0; i + 40 <= body.length; i += 40) assert.ok(!db.includes(body.slice(i, i + 40)));
    const der = Buffer.from(body, 'base64').toString('latin1');
    assert.ok(!db.includes(der.slice(-40)), 'no raw key bytes either');
  });

  await t.test(
    'the hub app answers /.well-known/acme-challenge/ without a token (404 for unknown)',
    async () => {
      const r = await hub.app.inject({ method: 'GET', url: '/.well-known/acme-challenge/unknownToken' });
      assert.equal(r.statusCode, 404);
    },
  );

  await t.test('a wildcard is issued through dns-01 (challtestsrv)', async () => {
    const base = randomName('wild-');
    const c = await hub.client.post<{ sans: string[]; current: { serial: string } }>('/api/v1/certificates', {
      name: 'wild',
      sans: [`*.${base}`, base],
      issuer: 'pebble',
    });
    assert.ok(c.current.serial);
  });

  await t.test('dry run reports every step and stores nothing', async () => {
    const cert = (await store.getCertificate('web'))!;
    const before = { versions: (await store.listVersions(cert.id)).length, rev: await store.revision() };
    const sent = Date.now();
    const r = await hub.client.post<{ ok: boolean; steps: Array<{ name: string; ms: number }> }>(
      '/api/v1/certificates/web/renew?dryRun=true',
    );
    assert.equal(r.ok, true);
    assert.deepEqual(
      r.steps.map((s) => s.name),
      ['account', 'order', 'authorizations', 'challenge', 'finalize', 'download'],
    );
    const elapsed = Date.now() - sent;
    // each step's duration is measured: whole ms, and together no longer than the request took
    assert.ok(
      r.steps.every((s) => Number.isInteger(s.ms) && s.ms >= 0),
      JSON.stringify(r.steps),
    );
    const total = r.steps.reduce((sum, s) => sum + s.ms, 0);
    assert.ok(total <= elapsed, `steps took ${total} ms in a request of ${elapsed} ms`);
    assert.equal((await store.listVersions(cert.id)).length, before.versions);
    assert.equal(await store.revision(), before.rev);
  });

  await t.test('20 concurrent renew calls + a planner run make exactly one new version', async () => {
    // A SAN change makes the certificate due for the planner too, so both really contend.
    await store.updateCertificate('web', { sans: [web, randomName('www-')] }, 'test');
    const before = await versionsIssued('web');
    const renews = Array.from({ length: 20 }, () =>
      hub.client.post<{ serial: string }>('/api/v1/certificates/web/renew'),
    );
    const [results, report] = await Promise.all([Promise.all(renews), hub.planner!.runOnce()]);
    assert.equal(await versionsIssued('web'), before + 1);
    assert.equal(new Set(results.map((r) => r.serial)).size, 1, 'every caller got the one new version');
    assert.equal(report.failed.length, 0);
  });

  await t.test('revoke (keyCompromise) at the CA, then a replacement is issued', async () => {
    const before = await versionsIssued('web');
    const old = (await store.currentVersion((await store.getCertificate('web'))!.id))!;
    const r = await hub.client.post<{ revoked: { serial: string }; renewed?: { serial: string } }>(
      '/api/v1/certificates/web/revoke',
      { reason: 'keyCompromise' },
    );
    assert.equal(r.revoked.serial, old.serial);
    assert.ok(r.renewed && r.renewed.serial !== old.serial);
    assert.equal(await versionsIssued('web'), before + 1);
    const again: CertfleetError = await hub.client
      .post('/api/v1/certificates/web/revoke', { reason: 'nonsense' })
      .then(
        () => assert.fail('accepted'),
        (e) => e,
      );
    assert.equal(again.code, 'VALIDATION_FAILED');
  });

  await t.test('GET /plan lists every certificate with a reason', async () => {
    const plan = await hub.client.get<{
      entries: Array<{ certificateName: string; decision: { reason: string } }>;
    }>('/api/v1/plan');
    const names = plan.entries.map((e) => e.certificateName).sort();
    assert.deepEqual(names, ['web', 'wild']);
    assert.ok(plan.entries.every((e) => e.decision.reason === 'NotDue'));
  });

  const failRenew = async (issuer: string, sans?: string[]): Promise<CertfleetError> => {
    const cert = (await store.getCertificate('web'))!;
    const current = (await store.currentVersion(cert.id))!;
    await store.updateCertificate('web', { issuer, ...(sans ? { sans } : {}) }, 'test');
    try {
      const err: CertfleetError = await hub.client.post('/api/v1/certificates/web/renew').then(
        () => assert.fail(`renewal through ${issuer} succeeded`),
        (e) => e,
      );
      assert.equal(
        (await store.currentVersion(cert.id))!.id,
        current.id,
        'the previous version stays current',
      );
      assert.ok(err.hint.length > 10, `a hint for: ${err.message}`);
      return err;
    } finally {
      await store.updateCertificate('web', { issuer: 'pebble', sans: cert.sans }, 'test');
    }
  };

  await t.test('bad input: unreachable directory', async () => {
    const err = await failRenew('down');
    assert.equal(err.code, 'UNREACHABLE');
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${closed}`));
  });

  await t.test('bad input: termsOfServiceAgreed false', async () => {
    const err = await failRenew('notos');
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, /termsOfServiceAgreed/);
  });

  await t.test('bad input: invalid external account binding', async () => {
    const err = await failRenew('badeab');
    assert.equal(err.code, 'ACME_ERROR');
    assert.match(err.message, /unauthorized|externalAccount|kid|malformed/i);
  });

  await t.test('bad input: a name the CA rejects', async () => {
    const err = await failRenew('pebble', [`x${Date.now()}.blocked-domain.example`]);
    assert.equal(err.code, 'ACME_ERROR');
    assert.match(err.message, /rejectedIdentifier/);
    const state = await store.getRenewalState((await store.getCertificate('web'))!.id);
    assert.ok((state.failures as { count: number }).count >= 1, 'failures are kept for the planner');
  });

  await t.test(
    'bad input: creating a certificate for a name the CA rejects leaves nothing behind',
    async () => {
      const name = `rejected${Date.now()}`;
      const err: CertfleetError = await hub.client
        .post('/api/v1/certificates', { name, sans: [`${name}.blocked-domain.example`], issuer: 'pebble' })
        .then(
          () => assert.fail('creation succeeded'),
          (e) => e,
        );
      assert.equal(err.code, 'ACME_ERROR');
      assert.match(err.message, /rejectedIdentifier/);
      assert.equal(await store.getCertificate(name), undefined, 'no certificate without a version');
      const failed = await store.listEvents({ subject: `certificate:${name}` });
      assert.deepEqual(
        failed.map((e) => e.kind),
        ['version.issue_failed'],
        'the failure is recorded',
      );
      // The same name can be created once fixed: nothing half-made blocks it.
      await hub.client.post('/api/v1/certificates', { name, sans: [randomName()], issuer: 'pebble' });
    },
  );

  await t.test('config: a bad solver field and a missing EAB key name the path', async () => {
    const bad = await startAcmeHub(t, {
      issuers: [{ ...pebbleIssuer(pebble, caFile), solvers: [{ kind: 'webroot', webroot: 'relative' }] }],
    }).then(
      () => assert.fail('started'),
      (e) => e,
    );
    assert.match(String(bad.message), /issuers\[0\]\.solvers\[0\]\.webroot|webroot/);
    const eab = await startAcmeHub(t, {
      issuers: [
        pebbleIssuer(pebble, caFile, { eab: { kid: 'k', hmacKeyRef: 'env:CERTFLEET_TEST_UNSET_EAB' } }),
      ],
    }).then(
      () => assert.fail('started'),
      (e: CertfleetError) => e,
    );
    assert.equal(eab.code, 'CONFIG_INVALID');
    assert.match(eab.message, /issuers\[0\]\.eab\.hmacKeyRef.*CERTFLEET_TEST_UNSET_EAB/);
  });
});
