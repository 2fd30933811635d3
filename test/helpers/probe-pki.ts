/**
 * A tiny test PKI: root → intermediate → leaf, built with @peculiar/x509 and keys from src/pki/keys.ts.
 * Leaves can be expired, for the wrong name, or carry many SANs (wildcards for the benchmark).
 */
import { webcrypto, randomBytes } from 'node:crypto';
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it loaded first
import * as x509 from '@peculiar/x509';
import { generatePrivateKeyPem, toCryptoKeyPair, signingAlgorithm } from '../../src/pki/keys.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const DAY = 86_400_000;

export interface TestCa {
  certPem: string;
  keyPem: string;
  keys: CryptoKeyPair;
  cert: x509.X509Certificate;
}

export interface TestLeaf {
  certPem: string;
  keyPem: string;
  /** The leaf's issuer chain as a server would send it (intermediate only). */
  chainPems: string[];
  /** Leaf + intermediate, what nginx's ssl_certificate expects. */
  fullchainPem: string;
}

function serial(): string {
  const b = randomBytes(12);
  b[0] &= 0x7f; // positive
  return b.toString('hex');
}

async function newKeys(): Promise<{ keyPem: string; keys: CryptoKeyPair }> {
  const keyPem = await generatePrivateKeyPem('ecdsa-p256');
  const { keys } = await toCryptoKeyPair(keyPem);
  return { keyPem, keys };
}

async function caCert(name: string, keys: CryptoKeyPair, issuer?: TestCa): Promise<x509.X509Certificate> {
  const now = Date.now();
  return x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${name}`,
    issuer: issuer ? issuer.cert.subject : `CN=${name}`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 3650 * DAY),
    signingAlgorithm: signingAlgorithm('ecdsa-p256'),
    publicKey: keys.publicKey,
    signingKey: (issuer ? issuer.keys : keys).privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, issuer ? 0 : undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(issuer ? [await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey)] : []),
    ],
  });
}

function wrap(cert: x509.X509Certificate, keyPem: string, keys: CryptoKeyPair): TestCa {
  return { cert, certPem: `${cert.toString('pem')}\n`, keyPem, keys };
}

export interface TestPki {
  root: TestCa;
  intermediate: TestCa;
  issueLeaf(opts: {
    dns?: string[];
    ips?: string[];
    notBefore?: Date;
    notAfter?: Date;
    cn?: string;
  }): Promise<TestLeaf>;
}

/** A fresh root and intermediate; each test file makes its own so runs never share state. */
export async function createTestPki(label = 'certfleet probe test'): Promise<TestPki> {
  const r = await newKeys();
  const root = wrap(await caCert(`${label} root`, r.keys), r.keyPem, r.keys);
  const i = await newKeys();
  const intermediate = wrap(await caCert(`${label} intermediate`, i.keys, root), i.keyPem, i.keys);
  return {
    root,
    intermediate,
    async issueLeaf(opts) {
      const now = Date.now();
      const dns = opts.dns ?? ['localhost'];
      const ips = opts.ips ?? [];
      const l = await newKeys();
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${opts.cn ?? dns[0] ?? ips[0]}`,
        issuer: intermediate.cert.subject,
        notBefore: opts.notBefore ?? new Date(now - DAY),
        notAfter: opts.notAfter ?? new Date(now + 90 * DAY),
        signingAlgorithm: signingAlgorithm('ecdsa-p256'),
        publicKey: l.keys.publicKey,
        signingKey: intermediate.keys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension([
            ...dns.map((value) => ({ type: 'dns' as const, value })),
            ...ips.map((value) => ({ type: 'ip' as const, value })),
          ]),
          await x509.AuthorityKeyIdentifierExtension.create(intermediate.keys.publicKey),
        ],
      });
      const certPem = `${cert.toString('pem')}\n`;
      return {
        certPem,
        keyPem: l.keyPem,
        chainPems: [intermediate.certPem],
        fullchainPem: certPem + intermediate.certPem,
      };
    },
  };
}
