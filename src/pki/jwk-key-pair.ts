import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';

/**
 * A new key pair, handed over by the generator as the JWK of its private half: encoded by the generation job itself,
 * while it is alive. Never export the JWK of a KeyObject fresh from generateKeyPairSync instead: on Node 20 that can
 * deadlock the thread (the export holds the key's mutex while allocating; the GC this may trigger destroys the
 * finished generation job, whose destructor locks the same mutex; seen in gdb, bench/RESULTS.md).
 */
export function generateJwkPrivateKey(type: 'ed25519' | 'x25519'): JsonWebKey {
  // node's types lack the generator's 'jwk' encoding (documented, as for KeyObject.export)
  const generate = generateKeyPairSync as unknown as (
    t: typeof type,
    o: { privateKeyEncoding: { format: 'jwk' }; publicKeyEncoding: { format: 'jwk' } },
  ) => { privateKey: JsonWebKey };
  return generate(type, {
    privateKeyEncoding: { format: 'jwk' },
    publicKeyEncoding: { format: 'jwk' },
  }).privateKey;
}
