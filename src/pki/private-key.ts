/**
 * Parses a PEM private key into a KeyObject. OpenSSL 3's decoders make `createPrivateKey(pem)` cost ~0.5 ms for a
 * P-256 key, and every renewal parses its key several times (issuance check, bundle validation, rendering). For the
 * keys certfleet itself writes (unencrypted PKCS#8 EC P-256/P-384 with the public point embedded) the same key is
 * built from its JWK form in a seventh of the time. The result is the same KeyObject: OpenSSL too takes the
 * embedded public point as the key's public half (a test pins that both paths agree). Anything else (RSA, SEC1,
 * encrypted, no embedded point, odd encodings) goes through createPrivateKey unchanged.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';

const PKCS8_BEGIN = '-----BEGIN PRIVATE KEY-----';
const PKCS8_END = '-----END PRIVATE KEY-----';
const EC_PUBLIC_KEY = '2a8648ce3d0201'; // 1.2.840.10045.2.1
const CURVES: Record<string, { crv: string; size: number }> = {
  '2a8648ce3d030107': { crv: 'P-256', size: 32 }, // prime256v1
  '2b81040022': { crv: 'P-384', size: 48 }, // secp384r1
};

export function parsePrivateKey(pem: string): KeyObject {
  const jwk = ecJwkOf(pem);
  if (jwk) {
    try {
      return createPrivateKey({ key: jwk, format: 'jwk' });
    } catch {
      // not what it looked like: let OpenSSL decide (and word the error)
    }
  }
  return createPrivateKey(pem);
}

/** The JWK of a PKCS#8 EC key in the layout OpenSSL writes, or undefined for anything else. */
function ecJwkOf(pem: string) {
  const begin = pem.indexOf(PKCS8_BEGIN);
  const end = pem.indexOf(PKCS8_END);
  if (begin < 0 || end < begin || pem.indexOf(PKCS8_BEGIN, begin + 1) >= 0) return undefined;
  const der = Buffer.from(pem.slice(begin + PKCS8_BEGIN.length, end), 'base64');
  try {
    const info = children(der, tlv(der, 0, 0x30));
    if (info.length < 3 || der[info[0].start] !== 0) return undefined; // PrivateKeyInfo v1
    const alg = children(der, info[1]);
    if (alg.length !== 2 || hex(der, alg[0], 0x06) !== EC_PUBLIC_KEY) return undefined;
    const curve = CURVES[hex(der, alg[1], 0x06)];
    if (!curve) return undefined;
    const octets = info[2];
    if (octets.tag !== 0x04) return undefined;
    const ec = children(der, tlv(der, octets.start, 0x30));
    if (ec.length < 3 || ec[0].tag !== 0x02 || der[ec[0].start] !== 1 || ec[1].tag !== 0x04) return undefined;
    const d = der.subarray(ec[1].start, ec[1].end);
    const pubTag = ec.find((e) => e.tag === 0xa1);
    if (!pubTag || d.length !== curve.size) return undefined;
    const bits = tlv(der, pubTag.start, 0x03);
    const point = der.subarray(bits.start + 1, bits.end); // after the unused-bits octet
    if (der[bits.start] !== 0 || point.length !== 1 + 2 * curve.size || point[0] !== 0x04) return undefined;
    return {
      kty: 'EC',
      crv: curve.crv,
      d: d.toString('base64url'),
      x: point.subarray(1, 1 + curve.size).toString('base64url'),
      y: point.subarray(1 + curve.size).toString('base64url'),
    };
  } catch {
    return undefined;
  }
}

interface Tlv {
  tag: number;
  /** Where the contents start and end. */
  start: number;
  end: number;
}

/** One DER element at `at` (definite lengths only), which must have tag `want`. */
function tlv(der: Buffer, at: number, want?: number): Tlv {
  const tag = der[at];
  if (want !== undefined && tag !== want) throw new Error('unexpected tag');
  let len = der[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3) throw new Error('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | der[start + i];
    start += n;
  }
  const end = start + len;
  if (end > der.length) throw new Error('truncated');
  return { tag, start, end };
}

function children(der: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const c = tlv(der, at);
    out.push(c);
    at = c.end;
  }
  if (out.length && out[out.length - 1].end !== parent.end) throw new Error('trailing bytes');
  return out;
}

function hex(der: Buffer, e: Tlv, tag: number): string {
  if (e.tag !== tag) throw new Error('unexpected tag');
  return der.subarray(e.start, e.end).toString('hex');
}
