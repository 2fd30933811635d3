import { createECDH, createPublicKey, generateKeyPair, webcrypto, type KeyObject } from 'node:crypto';
import { CertfleetError } from '../core/errors.ts';
import { KEY_TYPES, type KeyType } from '../core/types.ts';
import { ecKeyEncodingsOfJwk, parsePrivateKey } from './private-key.ts';

/** A new key pair: the private key as PKCS#8 PEM, the public key as SPKI DER (what a certificate embeds). */
export interface GeneratedKey {
  keyPem: string;
  spkiDer: Buffer;
}

const ENCODINGS = {
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'der' },
} as const;

/** RSA keys take tens of milliseconds or more: made on libuv's thread pool. */
function generateRsa(modulusLength: number): Promise<GeneratedKey> {
  return new Promise((resolve, reject) => {
    generateKeyPair(
      'rsa',
      { modulusLength, ...ENCODINGS },
      (err: Error | null, spkiDer: Buffer, keyPem: string) =>
        err ? reject(err) : resolve({ keyPem, spkiDer }),
    );
  });
}

/**
 * EC keys: made on the event loop, where a trip to the thread pool costs more (~0.4 ms of CPU). OpenSSL's ECDH
 * generator hands over the raw scalar and point without a KeyObject (so never through a KeyObject's export, which
 * can deadlock on Node 20: jwk-key-pair.ts) at about half the cost of generateKeyPairSync's JWK encoding (30 against
 * 60 µs idle); they are written as PKCS#8 and SPKI by hand (OpenSSL's PEM/DER encoders cost ~0.2 ms more per key).
 */
function generateEc(namedCurve: 'P-256' | 'P-384'): GeneratedKey {
  const ecdh = createECDH(namedCurve === 'P-256' ? 'prime256v1' : 'secp384r1');
  const point = ecdh.generateKeys(); // uncompressed: 04 ‖ x ‖ y
  const size = (point.length - 1) / 2;
  const d = ecdh.getPrivateKey();
  const b64 = (b: Buffer) => b.toString('base64url');
  return ecKeyEncodingsOfJwk({
    crv: namedCurve,
    d: b64(d.length < size ? Buffer.concat([Buffer.alloc(size - d.length), d]) : d),
    x: b64(point.subarray(1, 1 + size)),
    y: b64(point.subarray(1 + size)),
  });
}

export function assertKeyType(value: string): KeyType {
  if (!(KEY_TYPES as readonly string[]).includes(value)) {
    throw new CertfleetError(
      'UNKNOWN_KEY_TYPE',
      `unknown key type "${value}"`,
      `use one of: ${KEY_TYPES.join(', ')}`,
    );
  }
  return value as KeyType;
}

/** Generates a key pair of the given type. */
export function generateKey(keyType: KeyType): Promise<GeneratedKey> {
  if (keyType.startsWith('ecdsa-'))
    return Promise.resolve(generateEc(keyType === 'ecdsa-p384' ? 'P-384' : 'P-256'));
  return generateRsa(Number(keyType.slice(4)));
}

/** Generates a private key of the given type; returns it as PKCS#8 PEM. */
export async function generatePrivateKeyPem(keyType: KeyType): Promise<string> {
  return (await generateKey(keyType)).keyPem;
}

/** The public half of a PEM private key as SPKI DER, and its key type (undefined: not one certfleet issues). */
export function publicKeyOf(keyPem: string): { spkiDer: Buffer; keyType: KeyType | undefined } {
  const key = parsePrivateKey(keyPem);
  return {
    spkiDer: createPublicKey(key).export({ type: 'spki', format: 'der' }),
    keyType: keyTypeOf(key),
  };
}

/** The key type a PEM private key has, or undefined for anything certfleet does not issue. */
export function keyTypeOf(key: KeyObject): KeyType | undefined {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (d.namedCurve === 'prime256v1') return 'ecdsa-p256';
    if (d.namedCurve === 'secp384r1') return 'ecdsa-p384';
  }
  if (key.asymmetricKeyType === 'rsa') {
    const t = `rsa-${d.modulusLength}`;
    return (KEY_TYPES as readonly string[]).includes(t) ? (t as KeyType) : undefined;
  }
  return undefined;
}

/** WebCrypto algorithm parameters matching a key type, for @peculiar/x509 signing. */
export function signingAlgorithm(
  keyType: KeyType,
): (EcKeyImportParams & EcdsaParams) | RsaHashedImportParams {
  if (keyType === 'ecdsa-p384') return { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
  if (keyType === 'ecdsa-p256') return { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
}

/** Imports a PKCS#8 PEM key as a WebCrypto key pair (what @peculiar/x509 signs with). */
export async function toCryptoKeyPair(keyPem: string): Promise<{ keys: CryptoKeyPair; keyType: KeyType }> {
  const keyObject = parsePrivateKey(keyPem);
  const keyType = keyTypeOf(keyObject);
  if (!keyType)
    throw new CertfleetError(
      'UNKNOWN_KEY_TYPE',
      'unsupported private key type',
      'use an ECDSA P-256/P-384 or RSA 2048-4096 key',
    );
  const alg = signingAlgorithm(keyType);
  const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(keyObject).export({ type: 'spki', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, alg, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', spki, alg, true, ['verify']);
  return { keys: { privateKey, publicKey } as CryptoKeyPair, keyType };
}
