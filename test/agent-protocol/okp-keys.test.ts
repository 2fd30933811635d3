import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPublicKey, sign, verify } from 'node:crypto';
import { newOkpKeyPair, publicKeyFromRaw, rawPublicKey } from '../../src/protocol/request-signature.ts';
import { openSealedKey, sealKey } from '../../src/protocol/sealed-key.ts';

/** The raw public key as OpenSSL derives it from the private key's PEM. */
function opensslRawPublicKey(privatePem: string): string {
  const der = execFileSync('openssl', ['pkey', '-pubout', '-outform', 'DER'], { input: privatePem });
  return der.subarray(der.length - 32).toString('base64url'); // SPKI of an OKP key ends with its 32 raw bytes
}

describe('OKP key pairs (agent identity, sealing ephemerals)', () => {
  for (const type of ['ed25519', 'x25519'] as const)
    test(`${type}: the raw public key is the private key's, as node and OpenSSL derive it`, () => {
      const { privateKey, publicKey } = newOkpKeyPair(type);
      assert.equal(privateKey.asymmetricKeyType, type);
      assert.equal(publicKey, rawPublicKey(createPublicKey(privateKey)));
      const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      assert.equal(publicKey, opensslRawPublicKey(pem));
    });

  test('an Ed25519 signature verifies with the raw public key; a new pair each time', () => {
    const a = newOkpKeyPair('ed25519');
    const b = newOkpKeyPair('ed25519');
    assert.notEqual(a.publicKey, b.publicKey);
    const sig = sign(null, Buffer.from('request'), a.privateKey);
    assert.equal(verify(null, Buffer.from('request'), publicKeyFromRaw('Ed25519', a.publicKey), sig), true);
    assert.equal(verify(null, Buffer.from('request'), publicKeyFromRaw('Ed25519', b.publicKey), sig), false);
  });

  test('a key sealed to an X25519 public key opens only with its private key', () => {
    const agent = newOkpKeyPair('x25519');
    const other = newOkpKeyPair('x25519');
    const sealed = sealKey('-----BEGIN PRIVATE KEY-----\nx\n', agent.publicKey, 'ep-1', 'v-1');
    assert.equal(openSealedKey(sealed, agent.privateKey, 'ep-1', 'v-1'), '-----BEGIN PRIVATE KEY-----\nx\n');
    assert.throws(
      () => openSealedKey(sealed, other.privateKey, 'ep-1', 'v-1'),
      /cannot open the sealed private key/,
    );
    // each seal has its own ephemeral key
    assert.notEqual(sealKey('k', agent.publicKey, 'ep-1', 'v-1').epk, sealed.epk);
  });
});
