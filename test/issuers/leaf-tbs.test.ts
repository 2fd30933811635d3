/**
 * The internal CA writes its leaves' DER by hand (src/issuers/internal/leaf-tbs.ts). Pinned here: for the same
 * fields, the to-be-signed part is byte for byte what @peculiar/x509's X509CertificateGenerator writes, for every key
 * type and for DNS, wildcard, IPv4 and IPv6 names, UTF-8 names, long SAN lists and both time encodings; the
 * whole certificate is what asn1-x509's schema writes; the signature is checked by node here and by `openssl
 * verify` in test/issuers/internal-ca.test.ts.
 */
import assert from 'node:assert/strict';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import * as asn1js from 'asn1js';
import { X509Certificate } from 'node:crypto';
import { describe, test } from 'node:test';
import { isIpAddress } from '../../src/core/names.ts';
import { KEY_TYPES, type KeyType } from '../../src/core/types.ts';
import { leafIssuer, leafTbs, signLeaf, type LeafFields } from '../../src/issuers/internal/leaf-tbs.ts';
import { generateKey, generatePrivateKeyPem, signingAlgorithm, toCryptoKeyPair } from '../../src/pki/keys.ts';
import { parsePrivateKey } from '../../src/pki/private-key.ts';
import { x509 } from '../../src/pki/x509.ts';

type CaKeyType = 'ecdsa-p256' | 'ecdsa-p384';

async function issuer(caKeyType: CaKeyType = 'ecdsa-p384') {
  const keyPem = await generatePrivateKeyPem(caKeyType);
  const { keys } = await toCryptoKeyPair(keyPem);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=certfleet internal intermediate 0a1b2c3d,O=certfleet',
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2031-01-01T00:00:00Z'),
    keys,
    signingAlgorithm: signingAlgorithm(caKeyType),
    extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
  });
  const aki = await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey);
  return {
    caKeyType,
    keys,
    cert,
    aki,
    leafIssuer: leafIssuer(cert.rawData, aki.rawData, parsePrivateKey(keyPem)),
  };
}

/** The same leaf through @peculiar/x509, as the internal CA made it before. */
async function viaGenerator(f: LeafFields, ca: Awaited<ReturnType<typeof issuer>>): Promise<Buffer> {
  const spki = new Uint8Array(f.spkiDer);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: f.serialHex,
    subject: [{ CN: [f.commonName] }],
    issuer: ca.cert.subject,
    notBefore: f.notBefore,
    notAfter: f.notAfter,
    publicKey: spki,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: signingAlgorithm(ca.caKeyType),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | (f.keyEncipherment ? x509.KeyUsageFlags.keyEncipherment : 0),
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        ...(f.usage.serverAuth ? [x509.ExtendedKeyUsage.serverAuth] : []),
        ...(f.usage.clientAuth ? [x509.ExtendedKeyUsage.clientAuth] : []),
      ]),
      new x509.SubjectAlternativeNameExtension(
        f.sans.map((n) =>
          isIpAddress(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n },
        ),
      ),
      await x509.SubjectKeyIdentifierExtension.create(spki),
      ca.aki,
    ],
  });
  // The first element of Certificate ::= SEQUENCE, exactly as written (not re-encoded).
  const parsed = asn1js.fromBER(cert.rawData).result as asn1js.Sequence;
  return Buffer.from(parsed.valueBlock.value[0].valueBeforeDecodeView);
}

describe('internal CA leaf encoding', () => {
  const cases: { name: string; fields: Omit<LeafFields, 'spkiDer' | 'keyEncipherment'> }[] = [
    {
      name: 'DNS and IP names, both usages, dates before 2050',
      fields: {
        serialHex: '7f1e2d3c4b5a69788796a5b4c3d2e1f0',
        commonName: 'web.example.test',
        sans: ['web.example.test', 'api.example.test', '10.0.0.7', '2001:db8::1'],
        notBefore: new Date('2026-11-23T10:20:30.456Z'),
        notAfter: new Date('2026-11-29T10:20:30.456Z'),
        usage: { serverAuth: true, clientAuth: true },
      },
    },
    {
      name: 'a wildcard common name, server only, a GeneralizedTime end, a serial with leading zero bits',
      fields: {
        serialHex: '0100000000000000000000000000000a',
        commonName: '*.example.test',
        sans: ['*.example.test'],
        notBefore: new Date('2049-12-31T23:59:00Z'),
        notAfter: new Date('2050-01-06T23:59:00Z'),
        usage: { serverAuth: true },
      },
    },
    {
      name: 'a client certificate named by an agent id',
      fields: {
        serialHex: '55',
        commonName: 'agent_01HZX',
        sans: ['agent_01HZX'],
        notBefore: new Date('2026-01-01T00:00:00Z'),
        notAfter: new Date('2026-04-01T00:00:00Z'),
        usage: { clientAuth: true },
      },
    },
    {
      name: 'a UTF-8 common name, 40 names (long-form lengths), GeneralizedTime with milliseconds, a 20-octet serial with its top bit set',
      fields: {
        serialHex: 'f'.repeat(40),
        commonName: 'bücher.example.test',
        sans: [
          'xn--bcher-kva.example.test',
          ...Array.from({ length: 37 }, (_, i) => `host-${i}.a-rather-long-zone-name.example.test`),
          '192.0.2.255',
          '2001:db8:0:0:1::ff',
        ],
        notBefore: new Date('2050-03-01T12:34:56.789Z'),
        notAfter: new Date('2050-03-07T12:34:56.999Z'),
        usage: { serverAuth: true, clientAuth: true },
      },
    },
    {
      name: 'dates on both sides of 2050 by a millisecond, a serial of zeros but its last octet',
      fields: {
        serialHex: '0000000000000001',
        commonName: 'edge.example.test',
        sans: ['edge.example.test'],
        notBefore: new Date('2049-12-31T23:59:59.999Z'),
        notAfter: new Date('2050-01-01T00:00:00.001Z'),
        usage: { serverAuth: true },
      },
    },
  ];
  // Every leaf key type under a P-384 CA (hubs made before P-256 became the default keep theirs); P-256 CAs too.
  const runs: [CaKeyType, KeyType][] = [
    ...KEY_TYPES.map((k): [CaKeyType, KeyType] => ['ecdsa-p384', k]),
    ['ecdsa-p256', 'ecdsa-p256'],
    ['ecdsa-p256', 'rsa-2048'],
  ];
  for (const [caKeyType, keyType] of runs)
    for (const c of cases)
      test(`${caKeyType} CA, ${keyType} leaf: ${c.name}: the same DER as @peculiar/x509`, async () => {
        const ca = await issuer(caKeyType);
        const f = {
          ...c.fields,
          spkiDer: (await generateKey(keyType)).spkiDer,
          keyEncipherment: keyType.startsWith('rsa'),
        };
        assert.equal(leafTbs(f, ca.leafIssuer).toString('hex'), (await viaGenerator(f, ca)).toString('hex'));
        const leaf = new X509Certificate(signLeaf(f, ca.leafIssuer));
        assert.ok(
          leaf.verify(new X509Certificate(Buffer.from(ca.cert.rawData)).publicKey),
          'signed by the issuer',
        );
        // The certificate carries the signed TBS bytes as they are, and is the DER asn1-x509's schema writes.
        const parsed = asn1js.fromBER(leaf.raw).result as asn1js.Sequence;
        assert.equal(
          Buffer.from(parsed.valueBlock.value[0].valueBeforeDecodeView).toString('hex'),
          leafTbs(f, ca.leafIssuer).toString('hex'),
        );
        assert.equal(
          Buffer.from(AsnConvert.serialize(AsnConvert.parse(leaf.raw, Certificate))).toString('hex'),
          leaf.raw.toString('hex'),
        );
      });

  test('an IPv4-mapped IPv6 name is encoded as that address (@peculiar/x509 wrote ::ffff:0192 for it)', async () => {
    const ca = await issuer();
    const f = {
      ...cases[0].fields,
      sans: ['::ffff:192.0.2.1'],
      spkiDer: (await generateKey('ecdsa-p256')).spkiDer,
      keyEncipherment: false,
    };
    const leaf = new X509Certificate(signLeaf(f, ca.leafIssuer));
    assert.equal(leaf.subjectAltName, 'IP Address:0:0:0:0:0:FFFF:C000:201');
  });
});
