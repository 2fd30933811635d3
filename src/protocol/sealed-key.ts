import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { CertfleetError } from '../core/errors.ts';
import { newOkpKeyPair, publicKeyFromRaw, rawPublicKey } from './request-signature.ts';
import { randomBytesPooled } from '../core/random-pool.ts';

/**
 * A private key sealed to one agent: ephemeral X25519 agreement with the agent's X25519 public key, HKDF-SHA256,
 * AES-256-GCM. The AAD binds the endpoint and version, so a sealed key cannot be replayed as another version or to
 * another endpoint. Only the agent's X25519 private key opens it; the hub keeps no copy of the ephemeral key.
 */
export const SEALED_KEY_ALG = 'x25519-hkdf-sha256-aes256gcm';

export interface SealedKey {
  alg: typeof SEALED_KEY_ALG;
  /** Ephemeral X25519 public key, raw base64url. */
  epk: string;
  iv: string;
  ct: string;
  tag: string;
}

export const sealedKeyAad = (endpointId: string, versionId: string): Buffer =>
  Buffer.from(`certfleet-sealed-key-v1\n${endpointId}\n${versionId}`);

function deriveKey(shared: Buffer, epk: string, recipient: string, aad: Buffer): Buffer {
  const salt = Buffer.concat([Buffer.from(epk, 'base64url'), Buffer.from(recipient, 'base64url')]);
  return Buffer.from(hkdfSync('sha256', shared, salt, aad, 32));
}

/** Seals `plaintext` to the recipient's raw X25519 public key (base64url). */
export function sealKey(
  plaintext: string,
  recipientX25519: string,
  endpointId: string,
  versionId: string,
): SealedKey {
  const recipient = publicKeyFromRaw('X25519', recipientX25519);
  const eph = newOkpKeyPair('x25519');
  const epk = eph.publicKey;
  const aad = sealedKeyAad(endpointId, versionId);
  const key = deriveKey(
    diffieHellman({ privateKey: eph.privateKey, publicKey: recipient }),
    epk,
    recipientX25519,
    aad,
  );
  const iv = randomBytesPooled(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return {
    alg: SEALED_KEY_ALG,
    epk,
    iv: iv.toString('base64url'),
    ct: ct.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
  };
}

/** Opens a sealed key with the agent's X25519 private key; throws when the key, endpoint or version do not match. */
export function openSealedKey(
  sealed: SealedKey,
  privateKey: KeyObject,
  endpointId: string,
  versionId: string,
): string {
  if (sealed.alg !== SEALED_KEY_ALG) {
    throw new CertfleetError(
      'BAD_REQUEST',
      `unknown sealed key algorithm "${sealed.alg}"`,
      'upgrade the agent',
    );
  }
  try {
    const recipient = rawPublicKey(createPublicKey(privateKey));
    const aad = sealedKeyAad(endpointId, versionId);
    const shared = diffieHellman({ privateKey, publicKey: publicKeyFromRaw('X25519', sealed.epk) });
    const decipher = createDecipheriv(
      'aes-256-gcm',
      deriveKey(shared, sealed.epk, recipient, aad),
      Buffer.from(sealed.iv, 'base64url'),
    );
    decipher.setAAD(aad);
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ct, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  } catch (e) {
    throw new CertfleetError(
      'FORBIDDEN',
      'cannot open the sealed private key',
      'the bundle was sealed to another agent key, endpoint or version; re-enroll this agent if its key changed',
      { cause: e },
    );
  }
}
