/**
 * What chain judgement needs to know about one certificate, read once per certificate (by DER) and kept: node's
 * X509Certificate gives names, dates, CA flag, SANs, EKU and the key; @peculiar/x509 gives what node 20 does not
 * expose (pathLen, keyUsage bits, the signature algorithm).
 */
import type { X509Certificate } from 'node:crypto';
import { x509 } from './x509.ts';

const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const EKU_ANY = '2.5.29.37.0';

const EKU_NAMES: Record<string, string> = {
  [EKU_SERVER_AUTH]: 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
  [EKU_ANY]: 'anyExtendedKeyUsage',
};

/** Digests that no browser or OpenSSL 3 (security level ≥ 1) accepts in a certificate signature. */
const WEAK_HASHES = new Set(['MD2', 'MD4', 'MD5', 'SHA-1']);
/** Signature algorithms @peculiar/x509 may leave as a bare OID. */
const SIGNATURE_OIDS: Record<string, [string, string]> = {
  '1.2.840.113549.1.1.2': ['RSASSA-PKCS1-v1_5', 'MD2'],
  '1.2.840.113549.1.1.3': ['RSASSA-PKCS1-v1_5', 'MD4'],
  '1.2.840.113549.1.1.4': ['RSASSA-PKCS1-v1_5', 'MD5'],
  '1.2.840.113549.1.1.5': ['RSASSA-PKCS1-v1_5', 'SHA-1'],
  '1.2.840.10040.4.3': ['DSA', 'SHA-1'],
  '1.2.840.10045.4.1': ['ECDSA', 'SHA-1'],
};

export interface KeyFacts {
  /** node's asymmetricKeyType: 'rsa', 'rsa-pss', 'ec', 'ed25519', 'dsa', ... */
  type: string;
  /** Modulus length for RSA/DSA, the curve's field size for EC. */
  bits?: number;
  /** OpenSSL curve name as node reports it: prime256v1, secp384r1, secp521r1, secp256k1, ... */
  curve?: string;
}

export interface CertFacts {
  x509: X509Certificate;
  /** SHA-256 of the DER, lower-case hex without colons. */
  fingerprint: string;
  /** Distinguished names on one line ("CN=a, O=b"). */
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  selfIssued: boolean;
  /** basicConstraints cA. */
  ca: boolean;
  pathLen?: number;
  /** keyUsage bits by name; undefined when the extension is absent (any use allowed). */
  keyUsage?: string[];
  /** Extended key usages by name (or OID); undefined when the extension is absent. */
  eku?: string[];
  /** At least one DNS or IP subjectAltName. */
  hasSan: boolean;
  signature: { algorithm: string; hash?: string; weak: boolean };
  key: KeyFacts;
}

/** Node prints distinguished names one attribute per line; messages want one line. */
export function oneLine(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}

const CURVE_BITS: Record<string, number> = {
  prime192v1: 192,
  secp224r1: 224,
  prime256v1: 256,
  secp256k1: 256,
  secp384r1: 384,
  secp521r1: 521,
};

const KEY_USAGE_BITS: [number, string][] = [
  [x509.KeyUsageFlags.digitalSignature, 'digitalSignature'],
  [x509.KeyUsageFlags.nonRepudiation, 'nonRepudiation'],
  [x509.KeyUsageFlags.keyEncipherment, 'keyEncipherment'],
  [x509.KeyUsageFlags.dataEncipherment, 'dataEncipherment'],
  [x509.KeyUsageFlags.keyAgreement, 'keyAgreement'],
  [x509.KeyUsageFlags.keyCertSign, 'keyCertSign'],
  [x509.KeyUsageFlags.cRLSign, 'cRLSign'],
  [x509.KeyUsageFlags.encipherOnly, 'encipherOnly'],
  [x509.KeyUsageFlags.decipherOnly, 'decipherOnly'],
];

function signatureOf(cert: x509.X509Certificate): CertFacts['signature'] {
  let alg: { name: string; hash?: { name: string } | string };
  try {
    alg = cert.signatureAlgorithm as typeof alg;
  } catch {
    return { algorithm: 'unknown', weak: false };
  }
  const known = SIGNATURE_OIDS[alg.name];
  if (known) alg = { name: known[0], hash: known[1] };
  const hash = typeof alg.hash === 'string' ? alg.hash : alg.hash?.name;
  return {
    algorithm: hash ? `${alg.name} with ${hash}` : alg.name,
    ...(hash ? { hash } : {}),
    weak: hash !== undefined && WEAK_HASHES.has(hash.toUpperCase()),
  };
}

function keyOf(x: X509Certificate): KeyFacts {
  const k = x.publicKey;
  const d = k.asymmetricKeyDetails ?? {};
  const type = k.asymmetricKeyType ?? 'unknown';
  if (d.namedCurve) return { type, curve: d.namedCurve, bits: CURVE_BITS[d.namedCurve] };
  if (d.modulusLength) return { type, bits: d.modulusLength };
  return { type };
}

function readFacts(x: X509Certificate): CertFacts {
  const p = new x509.X509Certificate(x.raw);
  const bc = p.getExtension(x509.BasicConstraintsExtension);
  const ku = p.getExtension(x509.KeyUsagesExtension);
  const eku = p.getExtension(x509.ExtendedKeyUsageExtension);
  const subject = oneLine(x.subject);
  const issuer = oneLine(x.issuer);
  return {
    x509: x,
    fingerprint: x.fingerprint256.replace(/:/g, '').toLowerCase(),
    subject,
    issuer,
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    selfIssued: x.subject === x.issuer,
    ca: bc?.ca ?? false,
    ...(bc?.pathLength !== undefined ? { pathLen: bc.pathLength } : {}),
    ...(ku ? { keyUsage: KEY_USAGE_BITS.filter(([bit]) => ku.usages & bit).map(([, name]) => name) } : {}),
    ...(eku ? { eku: eku.usages.map((oid) => EKU_NAMES[String(oid)] ?? String(oid)) } : {}),
    hasSan: /(^|, )(DNS|IP Address):/.test(x.subjectAltName ?? ''),
    signature: signatureOf(p),
    key: keyOf(x),
  };
}

/**
 * Facts are read once per certificate object and once per DER (probes keep their parsed certificates, other
 * callers parse anew): the @peculiar/x509 parse costs far more than a probe's own checks. Bounded.
 */
const byObject = new WeakMap<X509Certificate, CertFacts>();
const byFingerprint = new Map<string, CertFacts>();

export function certFacts(x: X509Certificate): CertFacts {
  let f = byObject.get(x);
  if (f) return f;
  const key = x.fingerprint256;
  f = byFingerprint.get(key);
  if (!f) {
    f = readFacts(x);
    if (byFingerprint.size >= 20_000) byFingerprint.clear();
    byFingerprint.set(key, f);
  }
  byObject.set(x, f);
  return f;
}
