import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { generateJwkPrivateKey } from '../pki/jwk-key-pair.ts';
import { randomBytesPooled } from '../core/random-pool.ts';

/**
 * Agent request authentication: every request after enrollment carries an Ed25519 signature over
 * `method\npath?query\ntimestamp\nnonce\nsha256(body)`. The hub checks the key stored at enrollment, rejects
 * clock skew beyond MAX_SKEW_MS and any nonce seen within that window (replay). Chosen over mTLS so that TLS can be
 * terminated by a proxy in front of the hub and no client-certificate lifecycle is needed.
 */
export const SIGNATURE_HEADERS = {
  endpoint: 'x-certfleet-endpoint',
  timestamp: 'x-certfleet-timestamp',
  nonce: 'x-certfleet-nonce',
  signature: 'x-certfleet-signature',
} as const;

export const MAX_SKEW_MS = 5 * 60_000;

const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

export function canonicalRequest(
  method: string,
  pathWithQuery: string,
  timestamp: string,
  nonce: string,
  body: Buffer | string | undefined,
): string {
  const digest = body?.length ? createHash('sha256').update(body).digest('hex') : EMPTY_SHA256;
  return `${method.toUpperCase()}\n${pathWithQuery}\n${timestamp}\n${nonce}\n${digest}`;
}

/** Headers that authenticate one request as `endpointId`. */
export function signRequest(
  key: KeyObject,
  endpointId: string,
  method: string,
  pathWithQuery: string,
  body: Buffer | undefined,
  now: number = Date.now(),
): Record<string, string> {
  const timestamp = String(now);
  const nonce = randomBytesPooled(16).toString('base64url');
  const signature = sign(
    null,
    Buffer.from(canonicalRequest(method, pathWithQuery, timestamp, nonce, body)),
    key,
  );
  return {
    [SIGNATURE_HEADERS.endpoint]: endpointId,
    [SIGNATURE_HEADERS.timestamp]: timestamp,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: signature.toString('base64'),
  };
}

export function verifySignature(publicKey: KeyObject, canonical: string, signatureB64: string): boolean {
  try {
    return verify(null, Buffer.from(canonical), publicKey, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}

/**
 * A new Ed25519 / X25519 key pair: the private key as a KeyObject of its own (rebuilt from the generator's JWK, see
 * generateJwkPrivateKey) and the raw public key (base64url).
 */
export function newOkpKeyPair(type: 'ed25519' | 'x25519'): { privateKey: KeyObject; publicKey: string } {
  const jwk = generateJwkPrivateKey(type);
  return { privateKey: createPrivateKey({ key: jwk, format: 'jwk' }), publicKey: jwk.x! };
}

/** Raw 32-byte public keys travel base64url-encoded (the JWK `x` value). */
export function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' }) as { x?: string };
  if (!jwk.x) throw new Error('not an OKP public key');
  return jwk.x;
}

export function publicKeyFromRaw(crv: 'Ed25519' | 'X25519', x: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv, x }, format: 'jwk' });
}

export function privateKeyFromPem(pem: string): KeyObject {
  return createPrivateKey(pem);
}
