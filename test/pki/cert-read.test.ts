/**
 * src/pki/cert-read.ts against node's X509Certificate (OpenSSL) on certificates the `openssl` CLI makes: every
 * field it reads equals node's, and whatever it does not expect it leaves to OpenSSL.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { readCertificate } from '../../src/pki/cert-read.ts';
import { certificateReading, inspectCertificate, sansOf } from '../../src/pki/inspect.ts';

const run = promisify(execFile);

interface Case {
  name: string;
  key: string[];
  subj: string;
  san?: string;
  extra?: string[];
  /** Left to OpenSSL by design. */
  deferred?: boolean;
}

const EC256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const CASES: Case[] = [
  { name: 'p256', key: EC256, subj: '/CN=a.example', san: 'DNS:a.example,DNS:www.a.example' },
  {
    name: 'p384, full name, IPv4',
    key: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
    subj: '/C=DE/ST=Berlin/L=Berlin/O=Example Org/OU=Ops Team/CN=multi.example',
    san: 'DNS:multi.example,IP:127.0.0.1,DNS:*.multi.example',
  },
  { name: 'p521', key: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521'], subj: '/CN=p521.example' },
  { name: 'rsa 2048', key: ['-newkey', 'rsa:2048'], subj: '/O=R/CN=rsa.example', san: 'DNS:rsa.example' },
  { name: 'rsa 1025 bits', key: ['-newkey', 'rsa:1025'], subj: '/CN=odd.example' },
  { name: 'ed25519', key: ['-newkey', 'ed25519'], subj: '/CN=ed.example', san: 'DNS:ed.example' },
  { name: 'serial with the top bit', key: EC256, subj: '/CN=s.example', extra: ['-set_serial', '0x80f1'] },
  { name: 'serial 1', key: EC256, subj: '/CN=s1.example', extra: ['-set_serial', '1'] },
  { name: 'serial with zero bytes', key: EC256, subj: '/CN=s2.example', extra: ['-set_serial', '0x0100'] },
  { name: 'GeneralizedTime', key: EC256, subj: '/CN=g.example', extra: ['-days', '16000'] },
  { name: 'no SAN', key: EC256, subj: '/CN=nosan.example' },
  {
    name: 'a CA with pathlen',
    key: EC256,
    subj: '/O=Ex/CN=Ex CA',
    extra: ['-addext', 'basicConstraints=critical,CA:TRUE,pathlen:2'],
  },
  // left to OpenSSL
  {
    name: 'multi-valued RDN',
    key: EC256,
    subj: '/CN=m.example+O=M',
    extra: ['-multivalue-rdn'],
    deferred: true,
  },
  { name: 'comma in a name', key: EC256, subj: '/O=Example\\, Inc/CN=c.example', deferred: true },
  { name: 'UTF-8 name', key: EC256, subj: '/CN=müller.example', extra: ['-utf8'], deferred: true },
  {
    name: 'emailAddress in the name',
    key: EC256,
    subj: '/CN=e.example/emailAddress=a@e.example',
    deferred: true,
  },
  { name: 'leading space', key: EC256, subj: '/CN= lead.example', deferred: true },
  {
    name: 'email SAN',
    key: EC256,
    subj: '/CN=x.example',
    san: 'DNS:x.example,email:a@x.example',
    deferred: true,
  },
  { name: 'IPv6 SAN', key: EC256, subj: '/CN=x.example', san: 'IP:::1', deferred: true },
  { name: 'rsa-pss key', key: ['-newkey', 'rsa-pss'], subj: '/CN=pss.example', deferred: true },
];

describe('reading certificates from their DER', () => {
  let dir: string;
  const made: Array<{ c: Case; pem: string }> = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certfleet-cert-read-'));
    for (const [i, c] of CASES.entries()) {
      const out = join(dir, `${i}.pem`);
      await run('openssl', [
        'req',
        '-x509',
        ...c.key,
        '-nodes',
        '-keyout',
        join(dir, `${i}.key`),
        '-subj',
        c.subj,
        ...(c.san ? ['-addext', `subjectAltName=${c.san}`] : []),
        ...(c.extra?.includes('-days') ? [] : ['-days', '30']),
        ...(c.extra ?? []),
        '-out',
        out,
      ]);
      made.push({ c, pem: await readFile(out, 'utf8') });
    }
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('reads what node reads, byte for byte, for the usual certificates', () => {
    for (const { c, pem } of made.filter((m) => !m.c.deferred)) {
      const x = new X509Certificate(pem);
      const r = readCertificate(x.raw);
      assert.ok(r, `${c.name}: read`);
      assert.equal(r.serial, x.serialNumber.toUpperCase(), `${c.name}: serial`);
      assert.equal(r.fingerprint, x.fingerprint256.replace(/:/g, '').toLowerCase(), `${c.name}: fingerprint`);
      assert.equal(r.subject, x.subject, `${c.name}: subject`);
      assert.equal(r.issuer, x.issuer, `${c.name}: issuer`);
      assert.equal(r.notBefore.getTime(), new Date(x.validFrom).getTime(), `${c.name}: notBefore`);
      assert.equal(r.notAfter.getTime(), new Date(x.validTo).getTime(), `${c.name}: notAfter`);
      assert.deepEqual(r.sans, sansOf(x), `${c.name}: SANs`);
      const key = x.publicKey;
      const d = key.asymmetricKeyDetails ?? {};
      assert.deepEqual(
        r.key,
        {
          type: key.asymmetricKeyType,
          ...(d.namedCurve ? { curve: d.namedCurve } : {}),
          ...(d.namedCurve || d.modulusLength
            ? { bits: d.modulusLength ?? { prime256v1: 256, secp384r1: 384, secp521r1: 521 }[d.namedCurve!] }
            : {}),
        },
        `${c.name}: key`,
      );
      assert.equal(
        Buffer.from(r.spki).toString('hex'),
        key.export({ type: 'spki', format: 'der' }).toString('hex'),
        `${c.name}: SubjectPublicKeyInfo`,
      );
      assert.equal(r.signatureAlgorithmMatches, true, `${c.name}: one signature algorithm`);
      assert.equal(r.ca, x.ca, `${c.name}: CA`);
      // inspectCertificate reads the PEM this way, and the X509Certificate the other: the same CertInfo
      assert.deepEqual(inspectCertificate(pem), inspectCertificate(x), `${c.name}: CertInfo`);
    }
  });

  test('inspectCertificate reads a PEM that is not one plain certificate through OpenSSL, as before', () => {
    const [a, b] = made.map((m) => m.pem);
    const x = new X509Certificate(a);
    assert.equal(certificateReading(a + b), undefined, 'two certificates');
    assert.deepEqual(inspectCertificate(a + b), inspectCertificate(x), 'the first one, as OpenSSL reads it');
    assert.equal(certificateReading(`subject=CN = a\n${a}`), undefined, 'text before it');
    assert.deepEqual(inspectCertificate(`subject=CN = a\n${a}`), inspectCertificate(x));
  });

  test('leaves every other certificate to OpenSSL', () => {
    for (const { c, pem } of made.filter((m) => m.c.deferred))
      assert.equal(readCertificate(new X509Certificate(pem).raw), undefined, c.name);
  });

  test('refuses what is not one DER certificate', () => {
    const der = new X509Certificate(made[0].pem).raw;
    assert.equal(readCertificate(der.subarray(0, der.length - 1)), undefined, 'truncated');
    assert.equal(readCertificate(Buffer.concat([der, Buffer.from([0])])), undefined, 'trailing byte');
    assert.equal(readCertificate(Buffer.from('not a certificate')), undefined);
    assert.equal(readCertificate(new Uint8Array(0)), undefined);
  });
});
