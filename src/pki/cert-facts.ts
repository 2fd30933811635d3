/**
 * What chain judgement needs to know about one certificate, read once per certificate (by DER) and kept: node's
 * X509Certificate gives names, dates, SANs and the key; what node 20 does not expose (basicConstraints with
 * pathLen, keyUsage bits, EKU, the signature algorithm) is read from the DER by hand (src/pki/cert-der.ts: the three
 * extensions' values and one OID, microseconds, where a schema parse of the whole certificate cost ~0.5 ms per new
 * leaf). @peculiar/x509 stays for what the table below does not name (RSA-PSS parameters, rare digests) and for DER
 * the walk refuses, so those facts are as before; test/pki/cert-facts.test.ts pins both readings to each other.
 */
import type { X509Certificate } from 'node:crypto';
import { certificateParts } from './cert-der.ts';
import { basicConstraints, readCertificate, type CertReading } from './cert-read.ts';
import { certificateReading, parseCertificate } from './inspect.ts';
import { children, contents, oidString, tlv } from './der.ts';
import { x509 } from './x509.ts';

const ID_CE_BASIC_CONSTRAINTS = '2.5.29.19';
const ID_CE_KEY_USAGE = '2.5.29.15';
const ID_CE_EXT_KEY_USAGE = '2.5.29.37';
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
/** The common signature algorithms, named as @peculiar/x509 names them (pinned by test/pki/cert-facts.test.ts). */
const COMMON_SIGNATURES: Record<string, [string, string?]> = {
  ...SIGNATURE_OIDS,
  '1.2.840.10045.4.3.2': ['ECDSA', 'SHA-256'],
  '1.2.840.10045.4.3.3': ['ECDSA', 'SHA-384'],
  '1.2.840.10045.4.3.4': ['ECDSA', 'SHA-512'],
  '1.2.840.113549.1.1.11': ['RSASSA-PKCS1-v1_5', 'SHA-256'],
  '1.2.840.113549.1.1.12': ['RSASSA-PKCS1-v1_5', 'SHA-384'],
  '1.2.840.113549.1.1.13': ['RSASSA-PKCS1-v1_5', 'SHA-512'],
  '1.3.101.112': ['Ed25519'],
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
  /** node's parse; made on first use when the facts were read from the DER (src/pki/cert-read.ts). */
  readonly x509: X509Certificate;
  raw: Uint8Array;
  /** The names as node prints them (one attribute per line): what trust stores index their roots by. */
  subjectName: string;
  issuerName: string;
  /** The DER reading, for the usual certificates: their signatures are checked on it (judge-chain.ts). */
  reading?: CertReading;
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

const keyUsageNames = (flags: number) =>
  KEY_USAGE_BITS.filter(([bit]) => flags & bit).map(([, name]) => name);

function signatureNamed(name: string, hash: string | undefined): CertFacts['signature'] {
  return {
    algorithm: hash ? `${name} with ${hash}` : name,
    ...(hash ? { hash } : {}),
    weak: hash !== undefined && WEAK_HASHES.has(hash.toUpperCase()),
  };
}

function signatureOf(cert: x509.X509Certificate): CertFacts['signature'] {
  let alg: { name: string; hash?: { name: string } | string };
  try {
    alg = cert.signatureAlgorithm as typeof alg;
  } catch {
    return { algorithm: 'unknown', weak: false };
  }
  const known = SIGNATURE_OIDS[alg.name];
  if (known) alg = { name: known[0], hash: known[1] };
  return signatureNamed(alg.name, typeof alg.hash === 'string' ? alg.hash : alg.hash?.name);
}

function keyOf(x: X509Certificate): KeyFacts {
  const k = x.publicKey;
  const d = k.asymmetricKeyDetails ?? {};
  const type = k.asymmetricKeyType ?? 'unknown';
  if (d.namedCurve) return { type, curve: d.namedCurve, bits: CURVE_BITS[d.namedCurve] };
  if (d.modulusLength) return { type, bits: d.modulusLength };
  return { type };
}

/** The facts node 20 does not expose. */
type DerFacts = Pick<CertFacts, 'ca' | 'pathLen' | 'keyUsage' | 'eku' | 'signature'>;

function withExtensions(
  bc: { ca: boolean; pathLen?: number } | undefined,
  keyUsage: string[] | undefined,
  eku: string[] | undefined,
  signature: CertFacts['signature'],
): DerFacts {
  return {
    ca: bc?.ca ?? false,
    ...(bc?.pathLen !== undefined ? { pathLen: bc.pathLen } : {}),
    ...(keyUsage ? { keyUsage } : {}),
    ...(eku ? { eku } : {}),
    signature,
  };
}

/** Through a full @peculiar/x509 parse: any certificate it can read. */
function peculiarFacts(raw: X509Certificate['raw']): DerFacts {
  const p = new x509.X509Certificate(raw);
  const bc = p.getExtension(x509.BasicConstraintsExtension);
  const ku = p.getExtension(x509.KeyUsagesExtension);
  const eku = p.getExtension(x509.ExtendedKeyUsageExtension);
  return withExtensions(
    bc ? { ca: bc.ca, pathLen: bc.pathLength } : undefined,
    ku ? keyUsageNames(ku.usages) : undefined,
    eku ? eku.usages.map((oid) => EKU_NAMES[String(oid)] ?? String(oid)) : undefined,
    signatureOf(p),
  );
}

/** KeyUsage ::= BIT STRING; named bit i (0 = digitalSignature) as the flag 1 << i, unused trailing bits ignored. */
function keyUsageFlags(v: Uint8Array): number {
  const b = contents(v, tlv(v, 0, 0x03), 0x03);
  if (b.length === 0 || b[0] > 7) throw new Error('bad BIT STRING');
  const bits = (b.length - 1) * 8 - b[0];
  let flags = 0;
  for (let i = 0; i < Math.min(bits, 9); i++) if (b[1 + (i >> 3)] & (0x80 >> (i & 7))) flags |= 1 << i;
  return flags;
}

/** ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId */
const extKeyUsage = (v: Uint8Array) => children(v, tlv(v, 0, 0x30)).map((e) => oidString(v, e));

/**
 * From the DER alone (no @peculiar objects). Undefined when the signature algorithm is not a common one or the
 * DER is not what the walk expects.
 */
export function derFacts(raw: Uint8Array): DerFacts | undefined {
  try {
    const { signatureOid, extensions } = certificateParts(raw);
    return partsFacts(signatureOid, extensions);
  } catch {
    return undefined;
  }
}

function partsFacts(signatureOid: string, extensions: Map<string, Uint8Array>): DerFacts | undefined {
  try {
    const known = COMMON_SIGNATURES[signatureOid];
    if (!known) return undefined;
    const bc = extensions.get(ID_CE_BASIC_CONSTRAINTS);
    const ku = extensions.get(ID_CE_KEY_USAGE);
    const eku = extensions.get(ID_CE_EXT_KEY_USAGE);
    return withExtensions(
      bc ? basicConstraints(bc) : undefined,
      ku ? keyUsageNames(keyUsageFlags(ku)) : undefined,
      eku ? extKeyUsage(eku).map((oid) => EKU_NAMES[oid] ?? oid) : undefined,
      signatureNamed(known[0], known[1]),
    );
  } catch {
    return undefined;
  }
}

const fingerprintHex = (x: X509Certificate) => x.fingerprint256.replace(/:/g, '').toLowerCase();

function readFacts(x: X509Certificate): CertFacts {
  const reading = readCertificate(x.raw);
  return {
    x509: x,
    raw: x.raw,
    subjectName: x.subject,
    issuerName: x.issuer,
    ...(reading ? { reading } : {}),
    fingerprint: fingerprintHex(x),
    subject: oneLine(x.subject),
    issuer: oneLine(x.issuer),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    selfIssued: x.subject === x.issuer,
    ...(derFacts(x.raw) ?? peculiarFacts(x.raw)),
    hasSan: /(^|, )(DNS|IP Address):/.test(x.subjectAltName ?? ''),
    key: keyOf(x),
  };
}

/** Both readings, for the test that pins them to each other. */
export const factsReaders = { der: derFacts, peculiar: peculiarFacts };

/**
 * Facts are read once per certificate object and once per DER (probes keep their parsed certificates, other
 * callers parse anew): the @peculiar/x509 parse costs far more than a probe's own checks. Bounded.
 */
const byObject = new WeakMap<X509Certificate, CertFacts>();
const byFingerprint = new Map<string, CertFacts>();

export function certFacts(x: X509Certificate): CertFacts {
  let f = byObject.get(x);
  if (f) return f;
  const key = fingerprintHex(x);
  f = byFingerprint.get(key);
  if (!f) {
    f = readFacts(x);
    keepFacts(key, f);
  }
  byObject.set(x, f);
  return f;
}

function keepFacts(fingerprint: string, f: CertFacts): void {
  if (byFingerprint.size >= 20_000) byFingerprint.clear();
  byFingerprint.set(fingerprint, f);
}

/**
 * The facts of a PEM certificate: for the usual kind, from its DER reading alone, node's parse (the `x509` field)
 * made only if something asks for it; otherwise through node's parse as certFacts.
 */
export function certFactsOfPem(pem: string): CertFacts {
  const r = certificateReading(pem);
  const ext = r && partsFacts(r.signatureOid, r.extensions);
  if (!r || !ext) return certFacts(parseCertificate(pem));
  let f = byFingerprint.get(r.fingerprint);
  if (f) return f;
  f = {
    get x509() {
      return parseCertificate(pem);
    },
    raw: r.der,
    subjectName: r.subject,
    issuerName: r.issuer,
    reading: r,
    fingerprint: r.fingerprint,
    subject: oneLine(r.subject),
    issuer: oneLine(r.issuer),
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    selfIssued: r.subject === r.issuer,
    ...ext,
    hasSan: r.sans.length > 0,
    key: { ...r.key },
  };
  keepFacts(r.fingerprint, f);
  return f;
}
