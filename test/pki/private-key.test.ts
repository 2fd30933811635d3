import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { generateKey } from '../../src/pki/keys.ts';
import { ecPkcs8PemOf, parsePrivateKey } from '../../src/pki/private-key.ts';

const pkcs8 = (k: ReturnType<typeof generateKeyPairSync>['privateKey']) =>
  k.export({ type: 'pkcs8', format: 'pem' }) as string;

/** The same key as OpenSSL's decoder makes it: same private and public halves, same PKCS#8 out. */
function assertSameKey(pem: string) {
  const fast = parsePrivateKey(pem);
  const slow = createPrivateKey(pem);
  assert.deepEqual(fast.export({ format: 'jwk' }), slow.export({ format: 'jwk' }));
  assert.equal(fast.export({ type: 'pkcs8', format: 'pem' }), slow.export({ type: 'pkcs8', format: 'pem' }));
  assert.deepEqual(fast.asymmetricKeyDetails, slow.asymmetricKeyDetails);
}

test('parses the PKCS#8 P-256 and P-384 keys certfleet writes into the key OpenSSL would make', () => {
  for (const namedCurve of ['P-256', 'P-384'])
    for (let i = 0; i < 20; i++) assertSameKey(pkcs8(generateKeyPairSync('ec', { namedCurve }).privateKey));
});

test('hands every other key to OpenSSL unchanged: RSA, SEC1, P-521, surrounding text', () => {
  assertSameKey(pkcs8(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey));
  assertSameKey(pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey));
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  assertSameKey(ec.export({ type: 'sec1', format: 'pem' }) as string);
  assertSameKey(`a comment before the key\n${pkcs8(ec)}`);
});

test('refuses what is not a key the way OpenSSL does', () => {
  const pem = pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  const broken = pem.replace(/\n[A-Za-z0-9+/]{8}/, '\nAAAAAAAA');
  for (const bad of ['', 'not a key', broken, pem.slice(0, 60) + pem.slice(-30)])
    assert.throws(
      () => parsePrivateKey(bad),
      (e: Error) => {
        assert.throws(() => createPrivateKey(bad));
        return e instanceof Error;
      },
      JSON.stringify(bad.slice(0, 40)),
    );
});

test('generates EC keys that OpenSSL reads back, with the public key it derives', async () => {
  // 400 keys: a private scalar with a leading zero byte (1 in 256) is written at full length, as OpenSSL does
  for (let i = 0; i < 400; i++) {
    const keyType = i % 2 ? 'ecdsa-p384' : 'ecdsa-p256';
    const { keyPem, spkiDer } = await generateKey(keyType);
    const key = createPrivateKey(keyPem);
    assert.equal(keyPem, key.export({ type: 'pkcs8', format: 'pem' }), 'the bytes OpenSSL writes for it');
    assert.equal(key.asymmetricKeyDetails?.namedCurve, keyType === 'ecdsa-p256' ? 'prime256v1' : 'secp384r1');
    assert.equal(
      createPublicKey(key).export({ type: 'spki', format: 'der' }).toString('hex'),
      spkiDer.toString('hex'),
    );
    if (i < 4)
      assert.match(
        execFileSync('openssl', ['pkey', '-check', '-noout'], { input: keyPem }).toString(),
        /Key is valid/,
      );
  }
});

test('re-encodes an EC key to the PKCS#8 PEM OpenSSL would export, and leaves other keys to OpenSSL', () => {
  const reexport = (pem: string) => createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem' });
  for (const namedCurve of ['P-256', 'P-384'])
    for (let i = 0; i < 20; i++) {
      const pem = pkcs8(generateKeyPairSync('ec', { namedCurve }).privateKey);
      assert.equal(ecPkcs8PemOf(pem), reexport(pem));
      assert.equal(ecPkcs8PemOf(`a comment before the key\n${pem}`), reexport(pem));
    }
  const cli = execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  assert.equal(ecPkcs8PemOf(cli.toString()), reexport(cli.toString()));
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  for (const other of [
    pkcs8(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
    pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey),
    ec.export({ type: 'sec1', format: 'pem' }) as string,
  ])
    assert.equal(ecPkcs8PemOf(other), undefined);
});
