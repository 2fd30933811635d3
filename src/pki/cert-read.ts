/**
 * What certfleet reads of a certificate, from its DER alone, for the usual kind of certificate: the ones ACME CAs and
 * the internal CA issue. Node's X509Certificate costs 0.2–0.4 ms to construct (OpenSSL 3 decodes the public key
 * through its provider framework), more than signing a leaf; the hub inspects every new version and every agent
 * validates every bundle it receives. The strings are the ones node prints (names one attribute per line, SANs,
 * serial), so a reading from here and one through X509Certificate are interchangeable; test/pki/cert-read.test.ts
 * pins them to each other. Anything outside the usual (an unusual name attribute or string type, a character that
 * needs escaping, an IPv6 or non-DNS subjectAltName, an unknown key) gives undefined: the caller asks OpenSSL.
 */
import { createHash } from 'node:crypto';
import { extensionMap } from './cert-der.ts';
import { children, contents, oidString, smallUint, tlv, type Tlv } from './der.ts';

export interface CertKey {
  /** node's asymmetricKeyType. */
  type: 'ec' | 'rsa' | 'ed25519';
  /** OpenSSL curve name, as node reports it. */
  curve?: string;
  /** Modulus length for RSA, the curve's field size for EC; none for Ed25519 (as node). */
  bits?: number;
}

export interface CertReading {
  der: Uint8Array;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
  /** Upper-case hex, as node's serialNumber. */
  serial: string;
  /** One attribute per line, as node's subject / issuer. */
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** DNS names and IPv4 addresses, as inspect.ts's sansOf reads node's subjectAltName. */
  sans: string[];
  /** The SubjectPublicKeyInfo element, header included. */
  spki: Uint8Array;
  key: CertKey;
  /** The signed part, the outer signature algorithm (element bytes), whether the TBS names the same, the signature. */
  tbs: Uint8Array;
  signatureOid: string;
  signatureAlgorithmMatches: boolean;
  signature: Uint8Array;
  /** Each extension's value by OID (the first of each). */
  extensions: Map<string, Uint8Array>;
  /** basicConstraints cA. */
  ca: boolean;
  pathLen?: number;
}

const NAME_ATTRIBUTES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
};
/** UTF8String, PrintableString, IA5String. */
const NAME_STRING_TAGS = new Set([0x0c, 0x13, 0x16]);
const ID_CE_SUBJECT_ALT_NAME = '2.5.29.17';
const ID_CE_BASIC_CONSTRAINTS = '2.5.29.19';
const EC_CURVES: Record<string, [string, number]> = {
  '1.2.840.10045.3.1.7': ['prime256v1', 256],
  '1.3.132.0.34': ['secp384r1', 384],
  '1.3.132.0.35': ['secp521r1', 521],
};

/** The reading, or undefined when the certificate is not the usual kind (or not DER the walk expects). */
export function readCertificate(der: Uint8Array): CertReading | undefined {
  try {
    return read(der);
  } catch {
    return undefined;
  }
}

function read(der: Uint8Array): CertReading | undefined {
  const outer = tlv(der, 0, 0x30);
  if (outer.end !== der.length) return undefined;
  const cert = children(der, outer);
  if (cert.length !== 3 || cert[0].tag !== 0x30 || cert[1].tag !== 0x30 || cert[2].tag !== 0x03)
    return undefined;
  const tbs = children(der, cert[0]);
  if (tbs[0]?.tag !== 0xa0) return undefined; // v1 certificates: OpenSSL decides
  const [, serialEl, sigAlgEl, issuerEl, validityEl, subjectEl, spkiEl, ...rest] = tbs;
  const serial = serialHex(contents(der, serialEl, 0x02));
  const subject = nameLines(der, subjectEl);
  const issuer = nameLines(der, issuerEl);
  const key = keyOf(der, spkiEl);
  if (serial === undefined || subject === undefined || issuer === undefined || !key) return undefined;
  const validity = children(der, validityEl);
  if (validityEl.tag !== 0x30 || validity.length !== 2) return undefined;
  const notBefore = timeOf(der, validity[0]);
  const notAfter = timeOf(der, validity[1]);
  if (!notBefore || !notAfter) return undefined;

  if (rest.some((e) => e.tag !== 0xa3)) return undefined; // unique identifiers: OpenSSL decides
  const extensions = extensionMap(der, rest);
  const sanValue = extensions.get(ID_CE_SUBJECT_ALT_NAME);
  const sans = sanValue ? sanList(sanValue) : [];
  if (!sans) return undefined;

  const bcValue = extensions.get(ID_CE_BASIC_CONSTRAINTS);
  const bc = bcValue ? basicConstraints(bcValue) : { ca: false };

  const sigBits = contents(der, cert[2], 0x03);
  if (sigBits[0] !== 0) return undefined;
  const bytes = (e: Tlv) => der.subarray(e.at, e.end);
  return {
    der,
    fingerprint: createHash('sha256').update(der).digest('hex'),
    serial,
    subject,
    issuer,
    notBefore,
    notAfter,
    sans,
    spki: bytes(spkiEl),
    key,
    tbs: bytes(cert[0]),
    signatureOid: oidString(der, children(der, cert[1])[0]),
    signatureAlgorithmMatches: Buffer.from(bytes(sigAlgEl)).equals(bytes(cert[1])),
    signature: sigBits.subarray(1),
    extensions,
    ...bc,
  };
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } */
export function basicConstraints(v: Uint8Array): { ca: boolean; pathLen?: number } {
  const items = children(v, tlv(v, 0, 0x30));
  let k = 0;
  let ca = false;
  if (items[k]?.tag === 0x01) {
    const b = contents(v, items[k++], 0x01);
    if (b.length !== 1) throw new Error('bad BOOLEAN');
    ca = b[0] !== 0;
  }
  const pathLen = items[k]?.tag === 0x02 ? smallUint(v, items[k++]) : undefined;
  if (k !== items.length) throw new Error('bad basicConstraints');
  return { ca, ...(pathLen !== undefined ? { pathLen } : {}) };
}

/** BN_bn2hex of a positive INTEGER: whole bytes, leading zero bytes dropped, "0" for zero. */
function serialHex(b: Uint8Array): string | undefined {
  if (b.length === 0 || b[0] & 0x80) return undefined; // negative: OpenSSL decides
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const hex = Buffer.from(b.subarray(i)).toString('hex').toUpperCase();
  return hex === '00' ? '0' : hex;
}

/**
 * Name ::= SEQUENCE OF RelativeDistinguishedName, printed as node prints it (X509_NAME_print_ex, one RDN a line,
 * short names): here only single-valued RDNs of the common attributes, as strings that need no escaping.
 */
function nameLines(der: Uint8Array, name: Tlv): string | undefined {
  if (name.tag !== 0x30) return undefined;
  const lines: string[] = [];
  for (const rdn of children(der, name)) {
    const set = rdn.tag === 0x31 ? children(der, rdn) : [];
    if (set.length !== 1 || set[0].tag !== 0x30) return undefined;
    const [type, value, extra] = children(der, set[0]);
    const short = NAME_ATTRIBUTES[oidString(der, type)];
    if (!short || extra || !value || !NAME_STRING_TAGS.has(value.tag)) return undefined;
    const text = plainText(der.subarray(value.start, value.end));
    if (text === undefined) return undefined;
    lines.push(`${short}=${text}`);
  }
  return lines.join('\n');
}

/** Printable ASCII that RFC 2253 escaping leaves alone: no , + " \ < > ; no leading # or space, no trailing space. */
function plainText(b: Uint8Array): string | undefined {
  if (b.length === 0) return undefined;
  const s = Buffer.from(b).toString('latin1');
  if (/[^\x20-\x7e]|[,+"\\<>;]|^[# ]| $/.test(s)) return undefined;
  return s;
}

/** UTCTime YYMMDDHHMMSSZ (50–99 → 19xx) or GeneralizedTime YYYYMMDDHHMMSSZ, as RFC 5280 §4.1.2.5 requires. */
function timeOf(der: Uint8Array, e: Tlv): Date | undefined {
  const s = Buffer.from(der.subarray(e.start, e.end)).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (e.tag === 0x17 && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    year = Number(m[1]);
    year += year < 50 ? 2000 : 1900;
  } else if (e.tag === 0x18 && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) year = Number(m[1]);
  else return undefined;
  const [mo, d, h, mi, sec] = m.slice(2).map(Number);
  const t = Date.UTC(year, mo - 1, d, h, mi, sec);
  const back = new Date(t);
  // a date that does not exist (Feb 30, hour 24) is left to OpenSSL
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h) return undefined;
  return back;
}

/** GeneralNames: dNSName entries of plain host characters and IPv4 iPAddress entries; anything else: undefined. */
function sanList(v: Uint8Array): string[] | undefined {
  const out: string[] = [];
  for (const g of children(v, tlv(v, 0, 0x30))) {
    const b = v.subarray(g.start, g.end);
    if (g.tag === 0x82) {
      const s = Buffer.from(b).toString('latin1');
      if (!/^[A-Za-z0-9*_.-]+$/.test(s)) return undefined;
      out.push(s);
    } else if (g.tag === 0x87 && b.length === 4) out.push(Array.from(b).join('.'));
    else return undefined;
  }
  return out;
}

/** EC on the named curves browsers accept, RSA, Ed25519; anything else is left to OpenSSL. */
function keyOf(der: Uint8Array, spki: Tlv): CertKey | undefined {
  const [alg, bits] = children(der, spki);
  if (spki.tag !== 0x30 || alg?.tag !== 0x30 || bits?.tag !== 0x03) return undefined;
  const [algOid, params] = children(der, alg);
  const id = oidString(der, algOid);
  const key = contents(der, bits, 0x03);
  if (key[0] !== 0) return undefined;
  if (id === '1.2.840.10045.2.1' && params?.tag === 0x06) {
    const curve = EC_CURVES[oidString(der, params)];
    return curve && key[1] === 4 ? { type: 'ec', curve: curve[0], bits: curve[1] } : undefined;
  }
  if (id === '1.2.840.113549.1.1.1') {
    const rsa = tlv(key, 1, 0x30);
    const modulus = contents(key, children(key, rsa)[0], 0x02);
    let i = 0;
    while (i < modulus.length && modulus[i] === 0) i++;
    if (i === modulus.length) return undefined;
    return { type: 'rsa', bits: (modulus.length - i - 1) * 8 + (32 - Math.clz32(modulus[i])) };
  }
  if (id === '1.3.101.112' && !params && key.length === 33) return { type: 'ed25519' };
  return undefined;
}
