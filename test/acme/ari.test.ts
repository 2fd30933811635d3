import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.ts';
import { MemoryAccountStore } from '../../src/issuers/acme/account-store.ts';
import { ariCertId, certIdFromParts, fetchRenewalInfo } from '../../src/issuers/acme/ari.ts';
import {
  HubHttp01Solver,
  MemoryHttp01Store,
  startHttp01Listener,
} from '../../src/solvers/http01-responder.ts';
import { firstOffered } from '../../src/solvers/solver.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { startAcmeFront, type AcmeFront } from '../helpers/acme-front.ts';
import { suiteCleanup } from '../helpers/cleanup.ts';

const run = promisify(execFile);
const rand = () => `${randomBytes(5).toString('hex')}.example.test`;

describe('ARI certID (RFC 9773 section 4.1)', () => {
  test('matches the RFC example: AKI 69:88:5B:...:C8:D4 and serial 00:87:65:43:21', () => {
    const aki = Buffer.from('69885B6B87464041E1B37B847BA0AE2CDE01C8D4', 'hex');
    assert.equal(
      certIdFromParts(aki, Buffer.from('0087654321', 'hex')),
      'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE',
    );
  });

  test('of a real certificate equals what openssl reports for its AKI and serial (leading zero kept)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'certfleet-ari-'));
    try {
      const p = (f: string) => join(dir, f);
      await run('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=ca',
        '-days',
        '1',
        '-keyout',
        p('ca.key'),
        '-out',
        p('ca.pem'),
      ]);
      await run('openssl', [
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=leaf',
        '-keyout',
        p('l.key'),
        '-out',
        p('l.csr'),
      ]);
      await writeFile(p('e.cnf'), 'authorityKeyIdentifier=keyid\n');
      await run('openssl', [
        'x509',
        '-req',
        '-in',
        p('l.csr'),
        '-CA',
        p('ca.pem'),
        '-CAkey',
        p('ca.key'),
        '-set_serial',
        '0x87654321',
        '-extfile',
        p('e.cnf'),
        '-days',
        '1',
        '-out',
        p('l.pem'),
      ]);
      const { stdout } = await run('openssl', [
        'x509',
        '-in',
        p('l.pem'),
        '-noout',
        '-ext',
        'authorityKeyIdentifier',
      ]);
      const aki = stdout
        .split('\n')[1]
        .trim()
        .replace(/^keyid:/, '')
        .replaceAll(':', '');
      const id = ariCertId(await readFile(p('l.pem'), 'utf8'));
      assert.equal(id, `${Buffer.from(aki, 'hex').toString('base64url')}.AIdlQyE`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a certificate without AKI has no certID', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'certfleet-ari-'));
    try {
      await run('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=x',
        '-days',
        '1',
        '-addext',
        'authorityKeyIdentifier=none',
        '-addext',
        'subjectKeyIdentifier=none',
        '-keyout',
        join(dir, 'k'),
        '-out',
        join(dir, 'c.pem'),
      ]);
      const pem = await readFile(join(dir, 'c.pem'), 'utf8');
      assert.throws(() => ariCertId(pem), /no Authority Key Identifier/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ARI through the ARI- and profile-aware front in front of Pebble', () => {
  let pebble: Pebble;
  let ari: AcmeFront;
  let listener: { close(): Promise<void> };
  let issuer: AcmeIssuer;
  const store = new MemoryHttp01Store();
  const atEnd = suiteCleanup();
  before(async () => {
    pebble = await startPebble();
    atEnd(() => pebble.stop());
    ari = await startAcmeFront(pebble);
    atEnd(() => ari.stop());
    listener = await startHttp01Listener({ host: '127.0.0.1', port: pebble.httpPort, store });
    atEnd(() => listener.close());
    issuer = new AcmeIssuer({
      name: 'pebble-ari',
      directoryUrl: ari.directoryUrl,
      caPem: pebble.caPem,
      termsOfServiceAgreed: true,
      accountStore: new MemoryAccountStore(),
      solvers: firstOffered([new HubHttp01Solver(store)]),
    });
    atEnd(() => issuer.close());
  });

  test('fetchRenewalInfo reads the suggested window, explanation URL and Retry-After', async () => {
    const v = await issuer.issue({
      certificateName: 'a',
      sans: [rand()],
      keyType: 'ecdsa-p256',
      lifetimeDays: 90,
    });
    const start = new Date('2031-01-02T03:04:05Z');
    const end = new Date('2031-01-03T03:04:05Z');
    ari.window = { start, end, explanationURL: 'https://ca.example/why', retryAfterSeconds: 21600 };
    const info = await fetchRenewalInfo(ari.directoryUrl, v.certPem, { caPem: pebble.caPem });
    assert.deepEqual(info, {
      suggestedWindow: { start, end },
      explanationURL: 'https://ca.example/why',
      retryAfterSeconds: 21600,
    });
    assert.deepEqual(ari.renewalInfoRequests.at(-1), ariCertId(v.certPem));
  });

  test('a renewal order sends replaces with the certID of the replaced certificate', async () => {
    const name = rand(); // a replacement order must share a name with the certificate it replaces
    const first = await issuer.issue({
      certificateName: 'r',
      sans: [name],
      keyType: 'ecdsa-p256',
      lifetimeDays: 90,
    });
    assert.equal(ari.orderReplaces.at(-1), undefined);
    const renewed = await issuer.issue({
      certificateName: 'r',
      sans: [name],
      keyType: 'ecdsa-p256',
      lifetimeDays: 90,
      replacesCertPem: first.certPem,
    });
    assert.equal(ari.orderReplaces.at(-1), ariCertId(first.certPem));
    assert.notEqual(ariCertId(renewed.certPem), ariCertId(first.certPem));
  });

  test('no renewalInfo in the directory: fetchRenewalInfo says undefined and orders carry no replaces', async () => {
    ari.advertise = false;
    try {
      const plain = new AcmeIssuer({
        name: 'plain',
        directoryUrl: ari.directoryUrl,
        caPem: pebble.caPem,
        termsOfServiceAgreed: true,
        accountStore: new MemoryAccountStore(),
        solvers: firstOffered([new HubHttp01Solver(store)]),
      });
      const v = await plain.issue({
        certificateName: 'p',
        sans: [rand()],
        keyType: 'ecdsa-p256',
        lifetimeDays: 90,
      });
      await plain.issue({
        certificateName: 'p',
        sans: [rand()],
        keyType: 'ecdsa-p256',
        lifetimeDays: 90,
        replacesCertPem: v.certPem,
      });
      plain.close();
      assert.equal(ari.orderReplaces.at(-1), undefined);
      assert.equal(await fetchRenewalInfo(ari.directoryUrl, v.certPem, { caPem: pebble.caPem }), undefined);
    } finally {
      ari.advertise = true;
    }
  });

  test('fetchRenewalInfo with an injected fetch rejects a malformed window', async () => {
    const v = await issuer.issue({
      certificateName: 'm',
      sans: [rand()],
      keyType: 'ecdsa-p256',
      lifetimeDays: 90,
    });
    const fake = (async () =>
      new Response('{"suggestedWindow":{"start":"soon"}}', { status: 200 })) as typeof fetch;
    await assert.rejects(
      fetchRenewalInfo(
        { newNonce: 'x', newAccount: 'x', newOrder: 'x', renewalInfo: 'https://ca.example/ri' },
        v.certPem,
        {
          fetchImpl: fake,
        },
      ),
      /no valid suggestedWindow/,
    );
  });
});
