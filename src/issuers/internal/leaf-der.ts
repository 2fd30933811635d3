/**
 * The internal CA's leaf certificate, encoded by hand and signed with node's crypto: the same DER as
 * @peculiar/x509's X509CertificateGenerator wrote for the same fields (pinned byte for byte by
 * test/issuers/leaf-der.test.ts), without its schema-driven serialisation, WebCrypto round trip and the re-parse
 * of its own result (~2-3 ms per leaf, the largest cost of an issuance).
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { ipv6Groups } from '../../core/names.ts';
import { childrenOf, readTlv } from '../../pki/der.ts';
import {
  TRUE,
  bitString,
  directoryString,
  octets,
  oid,
  seq,
  set,
  time,
  tlv,
  unsigned,
} from '../../pki/der-write.ts';

const ECDSA_SHA384 = seq(oid('1.2.840.10045.4.3.3'));
const EKU_OIDS = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' };

export interface LeafIssuer {
  /** The issuer's subject Name, as DER (copied from its certificate). */
  subjectDer: Buffer;
  /** The whole authorityKeyIdentifier Extension, as DER. */
  akiExtensionDer: Buffer;
  /** The issuer's ECDSA P-384 private key. */
  key: KeyObject;
}

export interface LeafFields {
  serialHex: string;
  commonName: string;
  sans: string[];
  notBefore: Date;
  notAfter: Date;
  spkiDer: Buffer;
  /** digitalSignature, plus keyEncipherment for RSA keys. */
  keyEncipherment: boolean;
  usage: { serverAuth?: boolean; clientAuth?: boolean };
}

/** A certificate's subject Name, as DER: Certificate → tbsCertificate → subject (after [0] version). */
export function subjectDerOf(certDer: Uint8Array): Buffer {
  const tbs = childrenOf(certDer, readTlv(certDer, 0))[0];
  const fields = childrenOf(certDer, tbs);
  const subject = fields[fields[0].tag === 0xa0 ? 5 : 4];
  return Buffer.from(certDer.subarray(subject.at, subject.end));
}

const extension = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [TRUE] : []), octets(value));

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  return Buffer.from(ipv6Groups(ip).flatMap((g) => [g >> 8, g & 0xff]));
}

/** keyUsage's BIT STRING: bit 0 digitalSignature, bit 2 keyEncipherment, trailing zero bits unused. */
function keyUsageBits(keyEncipherment: boolean): Buffer {
  return keyEncipherment ? Buffer.from([0x03, 0x02, 0x05, 0xa0]) : Buffer.from([0x03, 0x02, 0x07, 0x80]);
}

export function leafTbs(f: LeafFields, issuer: LeafIssuer): Buffer {
  const spki = readTlv(f.spkiDer, 0);
  const publicKeyBits = childrenOf(f.spkiDer, spki)[1];
  // RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits.
  const ski = createHash('sha1')
    .update(f.spkiDer.subarray(publicKeyBits.start + 1, publicKeyBits.end))
    .digest();
  const ekus = (['serverAuth', 'clientAuth'] as const).filter((u) => f.usage[u]).map((u) => oid(EKU_OIDS[u]));
  const sans = f.sans.map((n) => (isIP(n) ? tlv(0x87, ipBytes(n)) : tlv(0x82, Buffer.from(n, 'ascii'))));
  return seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    unsigned(Buffer.from(f.serialHex, 'hex')),
    ECDSA_SHA384,
    issuer.subjectDer,
    seq(time(f.notBefore), time(f.notAfter)),
    seq(set(seq(oid('2.5.4.3'), directoryString(f.commonName)))),
    f.spkiDer,
    tlv(
      0xa3,
      seq(
        extension('2.5.29.19', true, seq()),
        extension('2.5.29.15', true, keyUsageBits(f.keyEncipherment)),
        extension('2.5.29.37', false, seq(...ekus)),
        extension('2.5.29.17', false, seq(...sans)),
        extension('2.5.29.14', false, octets(ski)),
        issuer.akiExtensionDer,
      ),
    ),
  );
}

/** The signed certificate, as PEM (64-character lines, as @peculiar/x509 wrote it). */
export function signLeaf(f: LeafFields, issuer: LeafIssuer): string {
  const tbs = leafTbs(f, issuer);
  const signature = sign('sha384', tbs, { key: issuer.key, dsaEncoding: 'der' });
  const der = seq(tbs, ECDSA_SHA384, bitString(signature));
  return `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----`;
}
