import { webcrypto } from 'node:crypto';
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it loaded first
import * as x509 from '@peculiar/x509';
import type { Bundle, KeyType } from '../../src/core/types.ts';
import { generatePrivateKeyPem, signingAlgorithm, toCryptoKeyPair } from '../../src/pki/keys.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export interface TestPki {
  rootPem: string;
  intermediatePem: string;
  bundle: Bundle;
}

const DAY = 86_400_000;

/**
 * A throw-away root → intermediate → leaf chain for tests. The CA keys are ecdsa-p256 unless `caKeyType` says
 * otherwise; the leaf gets `keyType`. Independent of the internal CA on purpose.
 */
export async function makeTestPki(
  keyType: KeyType = 'ecdsa-p256',
  opts: { dnsNames?: string[]; caKeyType?: KeyType; notBefore?: Date; notAfter?: Date } = {},
): Promise<TestPki> {
  const dnsNames = opts.dnsNames ?? ['test.certfleet.invalid'];
  const caKeyType = opts.caKeyType ?? 'ecdsa-p256';
  const notBefore = opts.notBefore ?? new Date(Date.now() - DAY);
  const notAfter = opts.notAfter ?? new Date(Date.now() + 30 * DAY);
  const [root, inter, leafKeyPem] = await Promise.all([
    generatePrivateKeyPem(caKeyType).then(toCryptoKeyPair),
    generatePrivateKeyPem(caKeyType).then(toCryptoKeyPair),
    generatePrivateKeyPem(keyType),
  ]);
  const leaf = await toCryptoKeyPair(leafKeyPem);
  const caAlg = signingAlgorithm(caKeyType);

  const rootCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=certfleet test root',
    keys: root.keys,
    signingAlgorithm: caAlg,
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(root.keys.publicKey),
    ],
  });
  const interCert = await x509.X509CertificateGenerator.create({
    subject: 'CN=certfleet test intermediate',
    issuer: rootCert.subject,
    publicKey: inter.keys.publicKey,
    signingKey: root.keys.privateKey,
    signingAlgorithm: caAlg,
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(inter.keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.keys.publicKey),
    ],
  });
  const leafCert = await x509.X509CertificateGenerator.create({
    subject: `CN=${dnsNames[0]}`,
    issuer: interCert.subject,
    publicKey: leaf.keys.publicKey,
    signingKey: inter.keys.privateKey,
    signingAlgorithm: caAlg,
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(dnsNames.map((value) => ({ type: 'dns' as const, value }))),
      await x509.AuthorityKeyIdentifierExtension.create(inter.keys.publicKey),
    ],
  });
  const pem = (c: x509.X509Certificate) => `${c.toString('pem').trim()}\n`;
  return {
    rootPem: pem(rootCert),
    intermediatePem: pem(interCert),
    bundle: { certPem: pem(leafCert), chainPems: [pem(interCert)], keyPem: leafKeyPem },
  };
}
