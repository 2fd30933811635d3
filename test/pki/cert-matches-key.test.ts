/**
 * certMatchesKey compares the public key a PKCS#8 EC key embeds with the certificate's SubjectPublicKeyInfo bytes,
 * and hands everything else to OpenSSL (src/pki/inspect.ts). Pinned here: for keys and certificates made by the
 * openssl CLI, it answers what OpenSSL's X509_check_private_key answers, for every pair.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certMatchesKey } from '../../src/pki/inspect.ts';
import { ecPublicKeyDerOf } from '../../src/pki/private-key.ts';
import { opensslPki, type KeySpec, type OpensslCert } from '../helpers/openssl-pki.ts';

function opensslSays(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** The same key in another layout: PKCS#8 DER re-wrapped with the key's scalar and another key's public point. */
function withPointOf(keyPem: string, otherPem: string): string {
  const der = (pem: string) => createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  const a = der(keyPem);
  const b = der(otherPem);
  // In OpenSSL's PKCS#8 EC layout the public point is the last 65 (P-256) octets.
  const mixed = Buffer.concat([a.subarray(0, a.length - 65), b.subarray(b.length - 65)]);
  return `-----BEGIN PRIVATE KEY-----\n${mixed
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END PRIVATE KEY-----\n`;
}

describe('certMatchesKey', () => {
  let dir: string;
  const leaves: OpensslCert[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certfleet-matches-'));
    const pki = await opensslPki(dir);
    const root = await pki.root('match root', { key: 'ec:P-256' });
    const keys: KeySpec[] = ['ec:P-256', 'ec:P-256', 'ec:P-384', 'ec:secp256k1', 'rsa:2048'];
    for (const [i, key] of keys.entries())
      leaves.push(await pki.leaf(`leaf ${i}`, root, ['localhost'], { key }));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a certificate matches its own key and no other, as OpenSSL says, for EC P-256/P-384, secp256k1 and RSA', () => {
    // The P-256 and P-384 keys take the byte comparison; secp256k1 and RSA go to OpenSSL.
    assert.deepEqual(
      leaves.map((l) => ecPublicKeyDerOf(l.keyPem) !== undefined),
      [true, true, true, false, false],
    );
    for (const [i, c] of leaves.entries())
      for (const [j, k] of leaves.entries()) {
        const said = certMatchesKey(c.certPem, k.keyPem);
        assert.equal(said, i === j, `${c.name} with the key of ${k.name}`);
        assert.equal(said, opensslSays(c.certPem, k.keyPem), `${c.name} with the key of ${k.name}: OpenSSL`);
      }
  });

  test('a key whose embedded public point is another key’s matches that key’s certificate, as in OpenSSL', () => {
    const [a, b] = leaves;
    const mixed = withPointOf(a.keyPem, b.keyPem);
    assert.equal(certMatchesKey(b.certPem, mixed), true);
    assert.equal(opensslSays(b.certPem, mixed), true);
    assert.equal(certMatchesKey(a.certPem, mixed), false);
    assert.equal(opensslSays(a.certPem, mixed), false);
  });

  test('a SEC1 key and a broken key go to OpenSSL: matched, and refused', () => {
    const [a] = leaves;
    const sec1 = createPrivateKey(a.keyPem).export({ type: 'sec1', format: 'pem' }) as string;
    assert.equal(certMatchesKey(a.certPem, sec1), true);
    assert.equal(certMatchesKey(a.certPem, 'not a key'), false);
    assert.equal(certMatchesKey('not a certificate', a.keyPem), false);
  });
});
