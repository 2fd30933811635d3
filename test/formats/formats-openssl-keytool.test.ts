import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { renderOutput } from '../../src/formats/index.ts';
import type { KeyType } from '../../src/core/types.ts';
import { suiteCleanup } from '../helpers/cleanup.ts';
import { makeTestPki, type TestPki } from '../helpers/test-pki.ts';

/**
 * Every output format, read back by the tools that consume them in the field: openssl 3 (default provider,
 * no -legacy) and the JDK's keytool. Keys are compared through their public halves.
 */

interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

function tool(cmd: string, args: string[]): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function ok(cmd: string, args: string[]): Promise<string> {
  const r = await tool(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const opensslFingerprint = async (file: string, inform = 'PEM') =>
  (await ok('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-inform', inform, '-in', file]))
    .trim()
    .replace(/^.*Fingerprint=/i, '')
    .replaceAll(':', '')
    .toLowerCase();

const PASSWORD = 'correct horse 1';
const KEY_TYPES: KeyType[] = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048'];

for (const keyType of KEY_TYPES) {
  describe(`output formats with a ${keyType} key`, () => {
    let pki: TestPki;
    let dir: string;
    let leafFingerprint: string;
    let leafPublicKey: string; // SPKI PEM, as openssl prints it
    const rendered = new Map<string, string>();

    /** Renders a format into the temp dir once per name and returns the file path. */
    async function file(format: string, opts: { password?: string; legacy?: boolean; alias?: string } = {}) {
      const name = `${format}${opts.legacy ? '-legacy' : ''}${opts.alias ? `-${opts.alias}` : ''}`;
      if (!rendered.has(name)) {
        const path = join(dir, name);
        await writeFile(path, await renderOutput(format, pki.bundle, opts));
        rendered.set(name, path);
      }
      return rendered.get(name)!;
    }

    const publicKeyOf = (keyFile: string, passArgs: string[] = []) =>
      ok('openssl', ['pkey', '-in', keyFile, '-pubout', ...passArgs]);

    const atEnd = suiteCleanup();
    before(async () => {
      pki = await makeTestPki(keyType);
      dir = await mkdtemp(join(tmpdir(), 'certfleet-formats-'));
      atEnd(() => rm(dir, { recursive: true, force: true }));
      await writeFile(join(dir, 'root.pem'), pki.rootPem);
      leafFingerprint = fingerprintOf(pki.bundle.certPem);
      leafPublicKey = await ok('openssl', ['x509', '-noout', '-pubkey', '-in', await file('cert')]);
      assert.match(leafPublicKey, /BEGIN PUBLIC KEY/);
    });

    test('cert is the leaf: openssl shows its SHA-256 fingerprint', async () => {
      assert.equal(await opensslFingerprint(await file('cert')), leafFingerprint);
    });

    test('chain and fullchain verify up to the root with openssl verify', async () => {
      const chain = await file('chain');
      const fullchain = await file('fullchain');
      assert.equal(await opensslFingerprint(chain), fingerprintOf(pki.intermediatePem));
      assert.equal(await opensslFingerprint(fullchain), leafFingerprint, 'fullchain starts with the leaf');
      const out = await ok('openssl', [
        'verify',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        chain,
        fullchain,
      ]);
      assert.match(out, /: OK/);
      const found = await ok('openssl', ['storeutl', '-noout', '-certs', fullchain]);
      assert.match(found, /Total found: 2\b/, 'fullchain holds leaf + intermediate');
    });

    test('der is the leaf in binary form', async () => {
      const der = await file('der');
      assert.equal(await opensslFingerprint(der, 'DER'), leafFingerprint);
    });

    test('key is PKCS#8 and belongs to the certificate', async () => {
      const key = await file('key');
      assert.match((await renderOutput('key', pki.bundle, {})).toString(), /^-----BEGIN PRIVATE KEY-----/);
      assert.equal(await publicKeyOf(key), leafPublicKey);
    });

    if (keyType.startsWith('rsa')) {
      test('key-rsa is PKCS#1 that openssl rsa reads, and belongs to the certificate', async () => {
        const keyRsa = await file('key-rsa');
        assert.match(
          (await renderOutput('key-rsa', pki.bundle, {})).toString(),
          /^-----BEGIN RSA PRIVATE KEY-----/,
        );
        assert.equal(await ok('openssl', ['rsa', '-in', keyRsa, '-pubout']), leafPublicKey);
        await ok('openssl', ['rsa', '-in', keyRsa, '-check', '-noout']);
      });
    } else {
      test('key-rsa refuses an EC key and points at "key"', async () => {
        await assert.rejects(renderOutput('key-rsa', pki.bundle, {}), (e: any) => {
          assert.equal(e.code, 'VALIDATION_FAILED');
          assert.match(e.message, /needs an RSA key.*ec key/);
          assert.match(e.hint, /"key"/);
          return true;
        });
      });
    }

    test('combined holds key, leaf and intermediate (HAProxy style)', async () => {
      const combined = await file('combined');
      const text = (await renderOutput('combined', pki.bundle, {})).toString();
      assert.deepEqual(
        [...text.matchAll(/-----BEGIN ([A-Z ]+)-----/g)].map((m) => m[1]),
        ['PRIVATE KEY', 'CERTIFICATE', 'CERTIFICATE'],
      );
      assert.equal(await opensslFingerprint(combined), leafFingerprint);
      assert.equal(await publicKeyOf(combined), leafPublicKey);
    });

    test('real consumers load them: haproxy -c takes combined, nginx -t takes fullchain + key', async () => {
      const combined = await file('combined');
      const haproxyCfg = (crt: string) =>
        `defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n` +
        `frontend f\n  bind 127.0.0.1:9 ssl crt ${crt}\n  default_backend b\nbackend b\n  server s 127.0.0.1:9\n`;
      await writeFile(join(dir, 'haproxy.cfg'), haproxyCfg(combined));
      // -c only parses and loads: nothing binds port 9.
      await ok('haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')]);
      // The same check must fail when the key does not belong to the leaf, or it proves nothing.
      const other = await makeTestPki(keyType);
      const mismatched = join(dir, 'mismatched.pem');
      await writeFile(
        mismatched,
        await renderOutput('combined', { ...pki.bundle, keyPem: other.bundle.keyPem }, {}),
      );
      await writeFile(join(dir, 'haproxy-bad.cfg'), haproxyCfg(mismatched));
      const bad = await tool('haproxy', ['-c', '-f', join(dir, 'haproxy-bad.cfg')]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /inconsistencies between private key and certificate/);

      const nginxConf = join(dir, 'nginx.conf');
      await writeFile(
        nginxConf,
        `error_log stderr;\npid ${join(dir, 'nginx.pid')};\nevents {}\nhttp {\n  access_log off;\n` +
          `  server { listen 127.0.0.1:9 ssl; ssl_certificate ${await file('fullchain')}; ` +
          `ssl_certificate_key ${await file('key')}; }\n}\n`,
      );
      const t = await tool('nginx', ['-t', '-e', 'stderr', '-p', dir, '-c', nginxConf]);
      assert.equal(t.code, 0, t.stderr);
      assert.match(t.stderr, /test is successful/);
    });

    for (const legacy of [false, true]) {
      const label = legacy
        ? 'legacy pkcs12 (3DES, SHA-1 MAC)'
        : 'pkcs12 (AES-256-CBC, PBKDF2-SHA-256, SHA-256 MAC)';
      test(`${label}: openssl 3 reads it without -legacy and the key matches`, async () => {
        const p12 = await file('pkcs12', { password: PASSWORD, legacy });
        const pass = ['-passin', `pass:${PASSWORD}`];
        const info = await tool('openssl', ['pkcs12', '-info', '-nokeys', '-in', p12, ...pass]);
        assert.equal(info.code, 0, info.stderr);
        if (legacy) {
          assert.match(info.stderr, /MAC: sha1/);
          assert.match(info.stderr, /Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC/);
        } else {
          assert.match(info.stderr, /MAC: sha256/);
          assert.match(info.stderr, /Encrypted data: PBES2, PBKDF2, AES-256-CBC.*PRF hmacWithSHA256/);
        }
        assert.equal(info.stdout.match(/BEGIN CERTIFICATE/g)?.length, 2, 'leaf + intermediate');
        assert.match(info.stdout, /friendlyName: certfleet/);
        assert.match(info.stdout, /localKeyID:/);
        const leafOnly = join(dir, `p12-leaf-${legacy}`);
        await ok('openssl', ['pkcs12', '-in', p12, '-clcerts', '-nokeys', '-out', leafOnly, ...pass]);
        assert.equal(await opensslFingerprint(leafOnly), leafFingerprint);
        const keyOut = join(dir, `p12-key-${legacy}`);
        await ok('openssl', ['pkcs12', '-in', p12, '-nocerts', '-nodes', '-out', keyOut, ...pass]);
        assert.equal(await publicKeyOf(keyOut), leafPublicKey);
        const wrong = await tool('openssl', [
          'pkcs12',
          '-info',
          '-nokeys',
          '-in',
          p12,
          '-passin',
          'pass:wrong-one',
        ]);
        assert.notEqual(wrong.code, 0);
        assert.match(wrong.stderr, /mac verify (error|failure)/i);
      });

      test(`${label}: keytool lists a PrivateKeyEntry with a chain of 2, and refuses a wrong password`, async () => {
        const p12 = await file('pkcs12', { password: PASSWORD, legacy });
        const out = await ok('keytool', [
          '-list',
          '-v',
          '-storetype',
          'PKCS12',
          '-keystore',
          p12,
          '-storepass',
          PASSWORD,
        ]);
        assert.match(out, /Alias name: certfleet/);
        assert.match(out, /Entry type: PrivateKeyEntry/);
        assert.match(out, /Certificate chain length: 2/);
        assert.equal(out.match(/Your keystore contains 1 entry/)?.length, 1);
        const wrong = await tool('keytool', [
          '-list',
          '-storetype',
          'PKCS12',
          '-keystore',
          p12,
          '-storepass',
          'wrong-one',
        ]);
        assert.notEqual(wrong.code, 0, 'a wrong password must fail the MAC check');
        assert.match(wrong.stdout + wrong.stderr, /password was incorrect|tampered/i);
      });
    }

    test('jks: keytool lists a PrivateKeyEntry with a chain of 2, and refuses a wrong password', async () => {
      const jks = await file('jks', { password: PASSWORD, alias: 'Web-Prod' });
      const out = await ok('keytool', [
        '-list',
        '-v',
        '-storetype',
        'JKS',
        '-keystore',
        jks,
        '-storepass',
        PASSWORD,
      ]);
      assert.match(out, /Keystore type: JKS/);
      assert.match(out, /Alias name: web-prod/);
      assert.match(out, /Entry type: PrivateKeyEntry/);
      assert.match(out, /Certificate chain length: 2/);
      assert.ok(out.replaceAll(':', '').toLowerCase().includes(leafFingerprint), 'leaf fingerprint listed');
      const wrong = await tool('keytool', [
        '-list',
        '-storetype',
        'JKS',
        '-keystore',
        jks,
        '-storepass',
        'wrong-one',
      ]);
      assert.notEqual(wrong.code, 0, 'a wrong password must fail the store digest');
      assert.match(wrong.stdout + wrong.stderr, /password was incorrect|tampered/i);
    });

    test('jks: keytool -importkeystore converts it to PKCS#12 and openssl extracts the same key', async () => {
      const jks = await file('jks', { password: PASSWORD });
      const p12 = join(dir, 'converted.p12');
      await rm(p12, { force: true });
      // Unlocking the key (src keypass = store password) proves the Sun key protector, not just the store digest.
      await ok('keytool', [
        '-importkeystore',
        '-noprompt',
        '-srckeystore',
        jks,
        '-srcstoretype',
        'JKS',
        '-srcstorepass',
        PASSWORD,
        '-destkeystore',
        p12,
        '-deststoretype',
        'PKCS12',
        '-deststorepass',
        'other-pass-2',
      ]);
      const keyOut = join(dir, 'converted-key.pem');
      await ok('openssl', [
        'pkcs12',
        '-in',
        p12,
        '-nocerts',
        '-nodes',
        '-out',
        keyOut,
        '-passin',
        'pass:other-pass-2',
      ]);
      assert.equal(await publicKeyOf(keyOut), leafPublicKey);
      const certOut = join(dir, 'converted-cert.pem');
      await ok('openssl', [
        'pkcs12',
        '-in',
        p12,
        '-clcerts',
        '-nokeys',
        '-out',
        certOut,
        '-passin',
        'pass:other-pass-2',
      ]);
      assert.equal(await opensslFingerprint(certOut), leafFingerprint);
    });
  });
}
