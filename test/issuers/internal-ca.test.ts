import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { KEY_TYPES } from '../../src/core/types.ts';
import { InternalCa } from '../../src/issuers/internal/internal-ca.ts';
import { certMatchesKey, inspectCertificate } from '../../src/pki/inspect.ts';
import { Sealer, newWrappedDataKey, unwrapDataKey } from '../../src/store/sealing.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { tempDir } from '../helpers/tmp.ts';

async function openCa(
  dir: string,
  clock = new ManualClock('2026-11-23T00:00:00Z'),
  newCaKeyType?: 'ecdsa-p256' | 'ecdsa-p384',
) {
  const store = await openSqliteStore(join(dir, 'hub.db'), clock);
  const master = Buffer.alloc(32, 7);
  const wrapped = (await store.initMeta({ data_key: newWrappedDataKey(master) })).data_key;
  const ca = await InternalCa.open(store, new Sealer(unwrapDataKey(master, wrapped)), clock, newCaKeyType);
  return { store, ca, clock };
}

describe('internal CA', () => {
  for (const keyType of KEY_TYPES) {
    test(`issues a ${keyType} leaf whose chain openssl verify accepts`, async (t) => {
      const dir = await tempDir(t);
      const { store, ca } = await openCa(dir, new ManualClock(Date.now()));
      onCleanup(t, () => store.close());
      const v = await ca.issue({
        certificateName: 'web',
        sans: ['web.example.test', '10.0.0.7'],
        keyType,
        lifetimeDays: 30,
      });
      assert.ok(certMatchesKey(v.certPem, v.keyPem));
      await writeFile(join(dir, 'root.pem'), ca.rootPem);
      await writeFile(join(dir, 'chain.pem'), v.chainPems.join(''));
      await writeFile(join(dir, 'leaf.pem'), v.certPem);
      const out = execFileSync('openssl', [
        'verify',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'chain.pem'),
        '-purpose',
        'sslserver',
        '-verify_hostname',
        'web.example.test',
        join(dir, 'leaf.pem'),
      ]).toString();
      assert.match(out, /leaf\.pem: OK/);
      const text = execFileSync('openssl', [
        'x509',
        '-noout',
        '-text',
        '-in',
        join(dir, 'leaf.pem'),
      ]).toString();
      assert.match(text, /DNS:web\.example\.test, IP Address:10\.0\.0\.7/);
      if (keyType.startsWith('rsa'))
        assert.match(text, new RegExp(`Public-Key: \\(${keyType.slice(4)} bit\\)`));
      else assert.match(text, keyType === 'ecdsa-p384' ? /NIST CURVE: P-384/ : /NIST CURVE: P-256/);
    });
  }

  test('lifetime follows the injected clock and the requested days', async (t) => {
    const dir = await tempDir(t);
    const { store, ca } = await openCa(dir);
    onCleanup(t, () => store.close());
    const v = await ca.issue({
      certificateName: 'x',
      sans: ['x.example.test'],
      keyType: 'ecdsa-p256',
      lifetimeDays: 6,
    });
    const info = inspectCertificate(v.certPem);
    assert.equal(info.notAfter.toISOString(), '2026-11-29T00:00:00.000Z');
  });

  test('the CA is created once and reused after a restart', async (t) => {
    const dir = await tempDir(t);
    const first = await openCa(dir);
    const fp = first.ca.rootFingerprint;
    await first.store.close();
    const second = await openCa(dir);
    onCleanup(t, () => second.store.close());
    assert.equal(second.ca.rootFingerprint, fp);
  });

  const opensslText = (pem: string) =>
    execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem }).toString();

  /** openssl verify of a leaf against the CA's root and intermediate. */
  async function verifiedByOpenssl(dir: string, ca: InternalCa, leafPem: string) {
    await writeFile(join(dir, 'root.pem'), ca.rootPem);
    await writeFile(join(dir, 'chain.pem'), ca.intermediatePem);
    await writeFile(join(dir, 'leaf.pem'), leafPem);
    const args = ['-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'chain.pem')];
    return execFileSync('openssl', ['verify', ...args, join(dir, 'leaf.pem')]).toString();
  }

  test('a new CA is ECDSA P-256 and signs its leaves with ecdsa-with-SHA256', async (t) => {
    const dir = await tempDir(t);
    const { store, ca } = await openCa(dir, new ManualClock(Date.now()));
    onCleanup(t, () => store.close());
    assert.match(opensslText(ca.rootPem), /NIST CURVE: P-256/);
    assert.match(opensslText(ca.intermediatePem), /NIST CURVE: P-256/);
    const v = await ca.issue({
      certificateName: 'w',
      sans: ['w.example.test'],
      keyType: 'ecdsa-p384',
      lifetimeDays: 6,
    });
    assert.match(opensslText(v.certPem), /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(await verifiedByOpenssl(dir, ca, v.certPem), /leaf\.pem: OK/);
  });

  test('a P-384 CA made before P-256 became the default is kept after a restart and still signs', async (t) => {
    const dir = await tempDir(t);
    const clock = new ManualClock(Date.now());
    const before = await openCa(dir, clock, 'ecdsa-p384');
    const fp = before.ca.rootFingerprint;
    const intermediate = before.ca.intermediatePem;
    await before.store.close();
    const { store, ca } = await openCa(dir, clock); // today's default
    onCleanup(t, () => store.close());
    assert.equal(ca.rootFingerprint, fp);
    assert.equal(ca.intermediatePem, intermediate);
    assert.match(opensslText(ca.intermediatePem), /NIST CURVE: P-384/);
    const v = await ca.issue({
      certificateName: 'w',
      sans: ['w.example.test'],
      keyType: 'ecdsa-p256',
      lifetimeDays: 6,
    });
    assert.match(opensslText(v.certPem), /Signature Algorithm: ecdsa-with-SHA384/);
    assert.match(await verifiedByOpenssl(dir, ca, v.certPem), /leaf\.pem: OK/);
  });
});
