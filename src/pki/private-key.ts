/**
 * Parses a PEM private key into a KeyObject. OpenSSL 3's decoders make `createPrivateKey(pem)` cost ~0.5 ms for a
 * P-256 key, and every renewal parses its key several times (issuance check, bundle validation, rendering). For the
 * keys certfleet itself writes (unencrypted PKCS#8 EC P-256/P-384 with the public point embedded) the same key is
 * built from its JWK form in a seventh of the time. The result is the same KeyObject: OpenSSL too takes the
 * embedded public point as the key's public half (a test pins that both paths agree). Anything else (RSA, SEC1,
 * encrypted, no embedded point, odd encodings) goes through createPrivateKey unchanged.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { children, contents, derElement, derUint, pemOf, tlv } from './der.ts';

const PKCS8_BEGIN = '-----BEGIN PRIVATE KEY-----';
const PKCS8_END = '-----END PRIVATE KEY-----';
const EC_PUBLIC_KEY = '2a8648ce3d0201'; // 1.2.840.10045.2.1
const CURVES: Record<string, { crv: string; size: number }> = {
  '2a8648ce3d030107': { crv: 'P-256', size: 32 }, // prime256v1
  '2b81040022': { crv: 'P-384', size: 48 }, // secp384r1
};
const CURVE_OIDS = Object.fromEntries(Object.entries(CURVES).map(([oid, c]) => [c.crv, oid]));

export function parsePrivateKey(pem: string): KeyObject {
  const ec = ecPkcs8Of(pem);
  if (ec) {
    try {
      return createPrivateKey({ key: jwkOf(ec), format: 'jwk' });
    } catch {
      // not what it looked like: let OpenSSL decide (and word the error)
    }
  }
  return createPrivateKey(pem);
}

/** A PKCS#8 EC key in the layout OpenSSL writes: its curve, private scalar and embedded public point. */
export interface EcPkcs8 {
  /** The curve OID's contents, hex. */
  curveOid: string;
  d: Uint8Array;
  /** The uncompressed public point (04 ‖ x ‖ y). */
  point: Uint8Array;
}

const jwkOf = ({ curveOid, d, point }: EcPkcs8) => {
  const { crv, size } = CURVES[curveOid];
  const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
  return {
    kty: 'EC',
    crv,
    d: b64(d),
    x: b64(point.subarray(1, 1 + size)),
    y: b64(point.subarray(1 + size)),
  };
};

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** The parts of a PKCS#8 EC key in the layout OpenSSL writes, or undefined for anything else. */
function ecPkcs8Of(pem: string): EcPkcs8 | undefined {
  const begin = pem.indexOf(PKCS8_BEGIN);
  const end = pem.indexOf(PKCS8_END);
  if (begin < 0 || end < begin || pem.indexOf(PKCS8_BEGIN, begin + 1) >= 0) return undefined;
  const der = Buffer.from(pem.slice(begin + PKCS8_BEGIN.length, end), 'base64');
  try {
    const info = children(der, tlv(der, 0, 0x30));
    if (info.length < 3 || der[info[0].start] !== 0) return undefined; // PrivateKeyInfo v1
    const alg = children(der, info[1]);
    if (alg.length !== 2 || hex(contents(der, alg[0], 0x06)) !== EC_PUBLIC_KEY) return undefined;
    const curveOid = hex(contents(der, alg[1], 0x06));
    const curve = CURVES[curveOid];
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
    return { curveOid, d, point };
  } catch {
    return undefined;
  }
}

const ecAlgorithm = (curveOid: string) =>
  derElement(
    0x30,
    derElement(0x06, Buffer.from(EC_PUBLIC_KEY, 'hex')),
    derElement(0x06, Buffer.from(curveOid, 'hex')),
  );

/** SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING } of an EC public point. */
const pointBits = (point: Uint8Array) => derElement(0x03, Buffer.from([0]), point);
const ecSpkiDer = (ec: Pick<EcPkcs8, 'curveOid' | 'point'>) =>
  derElement(0x30, ecAlgorithm(ec.curveOid), pointBits(ec.point));

/**
 * The SubjectPublicKeyInfo DER of an EC key's public half as its PKCS#8 embeds it (OpenSSL takes that point as the
 * key's public half too, even when it is not d·G), or undefined for keys parsePrivateKey hands to OpenSSL.
 */
export function ecPublicKeyDerOf(pem: string): Buffer | undefined {
  const ec = ecPkcs8Of(pem);
  return ec && ecSpkiDer(ec);
}

/** The PKCS#8 PEM OpenSSL's encoder writes for an EC key (pinned by test/pki/private-key.test.ts). */
function ecPkcs8Pem(ec: EcPkcs8): string {
  const ecPrivateKey = derElement(
    0x30,
    derUint(Buffer.from([1])),
    derElement(0x04, ec.d),
    derElement(0xa1, pointBits(ec.point)),
  );
  const pkcs8 = derElement(
    0x30,
    derUint(Buffer.from([0])),
    ecAlgorithm(ec.curveOid),
    derElement(0x04, ecPrivateKey),
  );
  return `${pemOf('PRIVATE KEY', pkcs8)}\n`;
}

/**
 * `parsePrivateKey(pem).export({ type: 'pkcs8', format: 'pem' })` for the EC keys parsePrivateKey reads by hand,
 * written from what was read (no KeyObject built or encoded); undefined for any other key. The key is not checked
 * beyond its layout: what a deployment writes has been matched with its certificate first (validateBundle).
 */
export function ecPkcs8PemOf(pem: string): string | undefined {
  const ec = ecPkcs8Of(pem);
  return ec && ecPkcs8Pem(ec);
}

/**
 * An EC key (P-256, P-384) given as the JWK of its private half, as PKCS#8 PEM and SPKI DER: the bytes OpenSSL's
 * encoders write (pinned by test/pki/private-key.test.ts), without their cost (~0.2 ms per key).
 */
export function ecKeyEncodingsOfJwk(jwk: { crv?: string; d?: string; x?: string; y?: string }): {
  keyPem: string;
  spkiDer: Buffer;
} {
  const curveOid = CURVE_OIDS[jwk.crv ?? ''];
  if (!curveOid || !jwk.d || !jwk.x || !jwk.y) throw new Error('not a P-256 or P-384 private key');
  const b = (v: string) => Buffer.from(v, 'base64url');
  const ec = { curveOid, d: b(jwk.d), point: Buffer.concat([Buffer.from([4]), b(jwk.x), b(jwk.y)]) };
  return { keyPem: ecPkcs8Pem(ec), spkiDer: ecSpkiDer(ec) };
}
