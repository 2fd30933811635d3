import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { CertfleetError } from '../../src/core/errors.ts';
import { SealedAccountStore } from '../../src/hub/acme/sealed-account-store.ts';
import { splitPemCertificates } from '../../src/pki/inspect.ts';
import { pebbleCaFile, pebbleIssuer, randomName, startAcmeHub } from '../helpers/acme-hub.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startPebble } from '../helpers/pebble.ts';
import { assertOpensslVerifies } from '../helpers/openssl-verify.ts';

test('external account binding against a Pebble that requires it', async (t) => {
  const kid = `certfleet-kid-${randomBytes(3).toString('hex')}`;
  const hmacKey = randomBytes(32).toString('base64url');
  const wrongKey = randomBytes(32).toString('base64url');
  const pebble = await startPebble({ eab: { kid, hmacKey } });
  onCleanup(t, () => pebble.stop());
  const caFile = await pebbleCaFile(t, pebble);
  // The same pebble under other directory URLs, so each issuer registers its own account.
  const dirFor = (tag: string) => `${pebble.directoryUrl}?${tag}`;
  const hub = await startAcmeHub(
    t,
    {
      issuers: [
        pebbleIssuer(pebble, caFile, { name: 'eab', eab: { kid, hmacKeyRef: 'env:TEST_EAB_HMAC' } }),
        pebbleIssuer(pebble, caFile, { name: 'noeab', directoryUrl: dirFor('noeab') }),
        pebbleIssuer(pebble, caFile, {
          name: 'wrongkey',
          directoryUrl: dirFor('wrongkey'),
          eab: { kid, hmacKeyRef: 'env:TEST_EAB_WRONG' },
        }),
        pebbleIssuer(pebble, caFile, {
          name: 'unknownkid',
          directoryUrl: dirFor('unknownkid'),
          eab: { kid: 'no-such-kid', hmacKeyRef: 'env:TEST_EAB_HMAC' },
        }),
      ],
      http01: { listen: `127.0.0.1:${pebble.httpPort}` },
    },
    { env: { TEST_EAB_HMAC: hmacKey, TEST_EAB_WRONG: wrongKey } },
  );
  const { store, sealer } = hub.ctx;
  const accounts = new SealedAccountStore(store, sealer);

  /** Creating a certificate through `issuer` fails; no version and no registered account are stored. */
  const failCreate = async (issuer: string, directoryUrl: string): Promise<CertfleetError> => {
    const name = `c-${issuer}`;
    const err: CertfleetError = await hub.client
      .post('/api/v1/certificates', { name, sans: [randomName(`${issuer}-`)], issuer })
      .then(
        () => assert.fail(`issuance through ${issuer} succeeded`),
        (e) => e,
      );
    assert.equal(await store.getCertificate(name), undefined, 'no certificate (so no version) stored');
    const account = await accounts.load(directoryUrl);
    assert.equal(account?.accountUrl, undefined, 'no registered account stored');
    assert.equal(err.code, 'ACME_ERROR');
    assert.match(err.message, /external account binding \(EAB/);
    assert.match(err.hint, /eab\.kid/);
    const shown = JSON.stringify({ message: err.message, hint: err.hint, details: err.details });
    for (const secret of [hmacKey, wrongKey]) assert.ok(!shown.includes(secret), 'no HMAC key in the error');
    return err;
  };

  await t.test('with the right kid and HMAC key: registers, issues, the chain verifies', async () => {
    const created = await hub.client.post<{ current: { serial: string } }>('/api/v1/certificates', {
      name: 'web',
      sans: [randomName('eab-')],
      issuer: 'eab',
    });
    assert.ok(created.current.serial);
    const account = await accounts.load(pebble.directoryUrl);
    assert.ok(account?.accountUrl, 'the account is registered and stored');
    const shown = await hub.client.get<{ currentPem: string }>('/api/v1/certificates/web');
    const [leaf, ...chain] = splitPemCertificates(shown.currentPem);
    assert.ok(chain.length >= 1);
    await assertOpensslVerifies(leaf, chain, await pebble.issuingRootPem());
  });

  await t.test('without EAB: externalAccountRequired, with a hint to configure eab', async () => {
    const err = await failCreate('noeab', dirFor('noeab'));
    assert.match(err.message, /externalAccountRequired: .*externalAccountBinding/);
    assert.match(err.hint, /set eab\.kid and eab\.hmacKeyRef on issuer "noeab"/);
  });

  await t.test('with a wrong HMAC key: the CA detail and a hint', async () => {
    const err = await failCreate('wrongkey', dirFor('wrongkey'));
    assert.match(err.message, new RegExp(`rejected the external account binding \\(EAB kid "${kid}"\\)`));
    assert.match(err.message, /unauthorized: external account binding JWS verification error/, 'CA detail');
    assert.match(err.hint, /eab\.hmacKeyRef on issuer "wrongkey"/);
  });

  await t.test('with an unknown kid: the CA detail and a hint', async () => {
    const err = await failCreate('unknownkid', dirFor('unknownkid'));
    assert.match(err.message, /EAB kid "no-such-kid"/);
    assert.match(err.message, /'kid' references a key that is not known/, 'CA detail');
    assert.match(err.hint, /eab\.kid/);
  });

  await t.test('the HMAC keys appear in no error, event or log line', async () => {
    const events = await store.listEvents({ kind: 'version.issue_failed', limit: 100 });
    assert.equal(events.length, 3, 'the three failures were recorded');
    const seen = JSON.stringify(events) + hub.logs.join('');
    assert.match(seen, /external account binding/, 'the failures were logged');
    for (const secret of [hmacKey, wrongKey]) {
      assert.ok(!seen.includes(secret), 'HMAC key not in events or logs');
      assert.ok(!seen.includes(Buffer.from(secret, 'base64url').toString('base64')), 'nor in base64');
    }
  });
});
