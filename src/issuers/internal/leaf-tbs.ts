/**
 * The internal CA's leaf certificate, written as DER by hand and signed with node's crypto: the same DER as
 * @peculiar/x509's X509CertificateGenerator wrote for the same fields (pinned byte for byte by
 * test/issuers/leaf-tbs.test.ts), without its WebCrypto round trip and the re-parse of its own result. What is the
 * same in every leaf of an issuer (its signature algorithm and name, the authorityKeyIdentifier, the
 * basicConstraints/keyUsage/EKU extensions of each set of flags) is serialised once with @peculiar/asn1-x509, as
 * before; per leaf only the serial, the dates, the subject, the key and its SANs and SKI are encoded, and the bytes
 * signed are the bytes placed in the Certificate. (A schema serialisation of the whole TBS per leaf cost ~0.5 ms.)
 */
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  KeyUsage,
  KeyUsageFlags,
  AlgorithmIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_kp_clientAuth,
  id_kp_serverAuth,
} from '@peculiar/asn1-x509';
import { createHash, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { CertfleetError } from '../../core/errors.ts';
import { ipv6Groups } from '../../core/names.ts';
import { children, derElement, derUint, pemOf, tlv } from '../../pki/der.ts';
import { x509 } from '../../pki/x509.ts';

/** The signature algorithm by the issuer key's curve: ecdsa-with-SHA256 for P-256, -SHA384 for P-384 (RFC 5758 §3.2). */
const ECDSA_BY_CURVE: Record<string, { oid: string; hash: string }> = {
  prime256v1: { oid: '1.2.840.10045.4.3.2', hash: 'sha256' },
  secp384r1: { oid: '1.2.840.10045.4.3.3', hash: 'sha384' },
};

const SEQUENCE = 0x30;
const SET = 0x31;
const OCTET_STRING = 0x04;
const BIT_STRING = 0x03;
const UTF8_STRING = 0x0c;
const PRINTABLE_STRING = 0x13;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
const DNS_NAME = 0x82; // GeneralName [2] IA5String, implicit
const IP_ADDRESS = 0x87; // GeneralName [7] OCTET STRING, implicit
const EXTENSIONS = 0xa3; // TBSCertificate [3] EXPLICIT
const VERSION_V3 = Buffer.from('a003020102', 'hex'); // [0] EXPLICIT INTEGER 2
const OID_COMMON_NAME = Buffer.from('0603550403', 'hex'); // 2.5.4.3
const OID_SUBJECT_ALT_NAME = Buffer.from('0603551d11', 'hex'); // 2.5.29.17
const OID_SUBJECT_KEY_IDENTIFIER = Buffer.from('0603551d0e', 'hex'); // 2.5.29.14

export interface LeafIssuer {
  /** The TBS's signature AlgorithmIdentifier followed by the issuer's Name, as DER (the same in every leaf). */
  signatureAndIssuerDer: Buffer;
  /** The authorityKeyIdentifier extension every leaf carries, as DER. */
  akiDer: Buffer;
  /** The issuer's ECDSA P-256 or P-384 private key. */
  key: KeyObject;
  /** The digest that key signs with, for node's crypto. */
  hash: string;
  /** The signatureAlgorithm's DER, the same in every leaf. */
  signatureAlgorithmDer: Buffer;
  /** basicConstraints, keyUsage and EKU as DER, the same in every leaf with the same flags; made on first use. */
  fixed: Map<string, Buffer>;
}

const der = (value: object) => Buffer.from(AsnConvert.serialize(value));

/** What every leaf needs from the issuer, read once: its certificate's subject and its AKI extension's DER. */
export function leafIssuer(certDer: BufferSource, akiExtensionDer: BufferSource, key: KeyObject): LeafIssuer {
  const ecdsa = ECDSA_BY_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''];
  if (!ecdsa)
    throw new CertfleetError(
      'UNKNOWN_KEY_TYPE',
      "the internal CA's intermediate key is neither ECDSA P-256 nor P-384",
      'restore the hub store from a backup: the internal CA only ever makes P-256 or P-384 keys',
    );
  const signatureAlgorithmDer = der(new AlgorithmIdentifier({ algorithm: ecdsa.oid }));
  return {
    signatureAndIssuerDer: Buffer.concat([
      signatureAlgorithmDer,
      der(AsnConvert.parse(certDer, Certificate).tbsCertificate.subject),
    ]),
    akiDer: der(AsnConvert.parse(akiExtensionDer, Extension)),
    key,
    hash: ecdsa.hash,
    signatureAlgorithmDer,
    fixed: new Map(),
  };
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

const extension = (extnID: string, critical: boolean, value: object) =>
  der(new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) }));

/** basicConstraints (CA:FALSE), keyUsage and EKU: equal in every leaf with the same flags, made once per issuer. */
function fixedExtensions(f: LeafFields, issuer: LeafIssuer): Buffer {
  const keyUsage = KeyUsageFlags.digitalSignature | (f.keyEncipherment ? KeyUsageFlags.keyEncipherment : 0);
  const key = `${keyUsage}:${!!f.usage.serverAuth}:${!!f.usage.clientAuth}`;
  let e = issuer.fixed.get(key);
  if (!e) {
    e = Buffer.concat([
      extension(id_ce_basicConstraints, true, new BasicConstraints()),
      extension(id_ce_keyUsage, true, new KeyUsage(keyUsage)),
      extension(
        id_ce_extKeyUsage,
        false,
        new ExtendedKeyUsage([
          ...(f.usage.serverAuth ? [id_kp_serverAuth] : []),
          ...(f.usage.clientAuth ? [id_kp_clientAuth] : []),
        ]),
      ),
    ]);
    issuer.fixed.set(key, e);
  }
  return e;
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after; whole seconds, in UTC. */
function time(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  const year = d.getUTCFullYear();
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return year > 2049
    ? derElement(GENERALIZED_TIME, Buffer.from(`${String(year).padStart(4, '0')}${rest}`, 'latin1'))
    : derElement(UTC_TIME, Buffer.from(`${p(year % 100)}${rest}`, 'latin1'));
}

/** Name ::= one RDN holding the commonName, a PrintableString when it can be one (as @peculiar/x509 chose). */
function subjectName(commonName: string): Buffer {
  const value = x509.Name.isPrintableString(commonName)
    ? derElement(PRINTABLE_STRING, Buffer.from(commonName, 'latin1'))
    : derElement(UTF8_STRING, Buffer.from(commonName, 'utf8'));
  return derElement(SEQUENCE, derElement(SET, derElement(SEQUENCE, OID_COMMON_NAME, value)));
}

/** A SAN's GeneralName: an IP address as its 4 or 16 octets (IPv6 through ipv6Groups), else a dNSName. */
function generalName(n: string): Buffer {
  const kind = isIP(n);
  if (kind === 0) return derElement(DNS_NAME, Buffer.from(n, 'latin1'));
  if (kind === 4) return derElement(IP_ADDRESS, Buffer.from(n.split('.').map(Number)));
  return derElement(IP_ADDRESS, Buffer.from(ipv6Groups(n).flatMap((g) => [g >> 8, g & 0xff])));
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits (the BIT STRING after its unused-bits octet). */
function subjectKeyIdentifier(spkiDer: Buffer): Buffer {
  const [, bits] = children(spkiDer, tlv(spkiDer, 0, SEQUENCE));
  if (bits?.tag !== BIT_STRING) throw new Error('not a SubjectPublicKeyInfo');
  return createHash('sha1')
    .update(spkiDer.subarray(bits.start + 1, bits.end))
    .digest();
}

/** The to-be-signed part, as DER. */
export function leafTbs(f: LeafFields, issuer: LeafIssuer): Buffer {
  const san = derElement(
    SEQUENCE,
    OID_SUBJECT_ALT_NAME,
    derElement(OCTET_STRING, derElement(SEQUENCE, ...f.sans.map(generalName))),
  );
  const ski = derElement(
    SEQUENCE,
    OID_SUBJECT_KEY_IDENTIFIER,
    derElement(OCTET_STRING, derElement(OCTET_STRING, subjectKeyIdentifier(f.spkiDer))),
  );
  return derElement(
    SEQUENCE,
    VERSION_V3,
    derUint(Buffer.from(f.serialHex, 'hex')),
    issuer.signatureAndIssuerDer,
    derElement(SEQUENCE, time(f.notBefore), time(f.notAfter)),
    subjectName(f.commonName),
    f.spkiDer,
    derElement(EXTENSIONS, derElement(SEQUENCE, fixedExtensions(f, issuer), san, ski, issuer.akiDer)),
  );
}

/** The signed certificate, as PEM (64-character lines, as @peculiar/x509 wrote it). */
export function signLeaf(f: LeafFields, issuer: LeafIssuer): string {
  const tbs = leafTbs(f, issuer);
  const signature = sign(issuer.hash, tbs, { key: issuer.key, dsaEncoding: 'der' });
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING } (RFC 5280 §4.1)
  const cert = derElement(
    SEQUENCE,
    tbs,
    issuer.signatureAlgorithmDer,
    derElement(BIT_STRING, Buffer.from([0]), signature),
  );
  return pemOf('CERTIFICATE', cert);
}
