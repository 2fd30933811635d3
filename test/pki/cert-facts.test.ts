/**
 * Chain judgement reads basicConstraints, keyUsage, EKU and the signature algorithm straight from the DER (the
 * full @peculiar/x509 parse it used before cost ~2 ms per new leaf). Pinned here: for certificates made by the
 * openssl CLI, the DER reading equals the @peculiar/x509 reading and what `openssl x509 -text` prints, and the
 * judgement of the chains they form agrees with `openssl verify`.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { factsReaders } from '../../src/pki/cert-facts.ts';
import { judgeChain } from '../../src/pki/judge-chain.ts';
import { trustStore } from '../../src/pki/trust-store.ts';
import { opensslPki, type OpensslCert } from '../helpers/openssl-pki.ts';

const run = promisify(execFile);
const DAY = 86_400_000;

async function opensslText(pem: string, dir: string): Promise<string> {
  const path = join(dir, 'text-in.pem');
  await writeFile(path, pem);
  return (await run('openssl', ['x509', '-noout', '-text', '-in', path])).stdout;
}

async function opensslVerifies(dir: string, leaf: string, chain: string[], root: string): Promise<boolean> {
  await writeFile(join(dir, 'v-root.pem'), root);
  await writeFile(join(dir, 'v-chain.pem'), chain.join('') || root);
  await writeFile(join(dir, 'v-leaf.pem'), leaf);
  try {
    await run('openssl', [
      'verify',
      '-CAfile',
      join(dir, 'v-root.pem'),
      '-untrusted',
      join(dir, 'v-chain.pem'),
      '-verify_hostname',
      'localhost',
      join(dir, 'v-leaf.pem'),
    ]);
    return true;
  } catch {
    return false;
  }
}

/** @peculiar/x509's EKU list is an array subclass; the facts are compared as data. */
const plain = (x: unknown) => JSON.parse(JSON.stringify(x));

describe('certificate facts from the DER', () => {
  let dir: string;
  let root: OpensslCert;
  let inter: OpensslCert;
  const certs: OpensslCert[] = [];
  const selfSigned: { name: string; pem: string }[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certfleet-facts-'));
    const pki = await opensslPki(dir);
    const now = Date.now();
    root = await pki.root('facts root', { key: 'ec:P-384', notAfter: new Date(now + 3650 * DAY) });
    inter = await pki.intermediate('facts inter', root, {
      ext: ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign'],
    });
    certs.push(root, inter);
    certs.push(await pki.leaf('plain', inter, ['localhost']));
    certs.push(await pki.leaf('rsa sha1', inter, ['localhost'], { key: 'rsa:2048', md: 'sha1' }));
    certs.push(await pki.leaf('sha384', inter, ['localhost'], { md: 'sha384' }));
    certs.push(
      await pki.leaf('many usages', inter, ['localhost'], {
        ext: [
          'keyUsage=digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment,keyAgreement,encipherOnly,decipherOnly',
          'extendedKeyUsage=serverAuth,clientAuth,codeSigning,1.2.3.4.5',
          'subjectAltName=DNS:localhost,IP:127.0.0.1',
        ],
      }),
    );
    certs.push(await pki.leaf('no extensions', inter, [], { ext: ['subjectKeyIdentifier=hash'] }));
    certs.push(
      await pki.leaf('ca without pathlen, not critical', inter, [], {
        ext: ['basicConstraints=CA:TRUE', 'keyUsage=cRLSign'],
      }),
    );
    // Odd shapes for the hand-written DER walk: no extensions at all, a two-octet pathLen, one keyUsage bit (seven
    // unused), anyExtendedKeyUsage and OIDs with multi-octet arcs (2.999 puts the first arc past one octet).
    certs.push(await pki.make({ name: 'no extensions at all', issuer: inter, ext: [] }));
    certs.push(
      await pki.leaf('pathlen 300, one usage bit', inter, [], {
        ext: ['basicConstraints=critical,CA:TRUE,pathlen:300', 'keyUsage=critical,digitalSignature'],
      }),
    );
    certs.push(
      await pki.leaf('any eku, long arcs', inter, ['localhost'], {
        ext: [
          'extendedKeyUsage=anyExtendedKeyUsage,1.3.6.1.4.1.311.10.3.4,2.999.1234567,1.2.840.113635.100.4.1',
          'subjectAltName=DNS:localhost',
        ],
      }),
    );
    // Algorithms `openssl ca` above does not make: the DER table's other rows and the @peculiar/x509 fallback.
    for (const [name, keyArgs, signArgs] of [
      ['ed25519', ['-algorithm', 'ED25519'], []],
      ['rsa-pss', ['-algorithm', 'RSA-PSS'], []],
      ['rsa sha512', ['-algorithm', 'RSA'], ['-sha512']],
      ['ec sha224', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-sha224']],
      ['ec sha1', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-sha1']],
    ] as const) {
      const key = join(dir, `${name}.key`);
      const out = join(dir, `${name}.pem`);
      await run('openssl', ['genpkey', ...keyArgs, '-out', key]);
      await run('openssl', [
        'req',
        '-x509',
        '-key',
        key,
        '-subj',
        `/CN=${name}`,
        ...signArgs,
        '-days',
        '1',
        '-out',
        out,
      ]);
      selfSigned.push({ name, pem: await readFile(out, 'utf8') });
    }
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the DER reading equals the @peculiar/x509 reading, or defers to it for uncommon algorithms', () => {
    const all = [...certs.map((c) => ({ name: c.name, pem: c.certPem })), ...selfSigned];
    const deferred: string[] = [];
    for (const { name, pem } of all) {
      const raw = new X509Certificate(pem).raw;
      const der = factsReaders.der(raw);
      if (der === undefined) deferred.push(name);
      else assert.deepEqual(plain(der), plain(factsReaders.peculiar(raw)), name);
    }
    assert.deepEqual(deferred.sort(), ['ec sha224', 'rsa-pss']);
  });

  test('what it reads is what openssl prints', async () => {
    for (const c of certs) {
      const f = factsReaders.der(new X509Certificate(c.certPem).raw)!;
      const text = await opensslText(c.certPem, dir);
      assert.equal(f.ca, /CA:TRUE/.test(text), `${c.name}: CA`);
      assert.equal(
        f.pathLen,
        /pathlen:(\d+)/.exec(text)?.[1] && Number(/pathlen:(\d+)/.exec(text)![1]),
        c.name,
      );
      assert.equal(f.keyUsage?.includes('keyCertSign') ?? false, /Certificate Sign/.test(text), c.name);
      assert.equal(f.keyUsage?.includes('decipherOnly') ?? false, /Decipher Only/.test(text), c.name);
      assert.equal(f.keyUsage === undefined, !/X509v3 Key Usage/.test(text), c.name);
      assert.equal(
        f.eku?.includes('serverAuth') ?? false,
        /TLS Web Server Authentication/.test(text),
        c.name,
      );
      assert.equal(f.eku?.includes('1.2.3.4.5') ?? false, /1\.2\.3\.4\.5/.test(text), c.name);
      assert.equal(f.eku?.includes('2.999.1234567') ?? false, /2\.999\.1234567/.test(text), c.name);
      assert.equal(f.eku === undefined, !/X509v3 Extended Key Usage/.test(text), c.name);
      const alg = /Signature Algorithm: (\S+)/.exec(text)![1];
      // ecdsa-with-SHA384, sha1WithRSAEncryption, ...
      assert.equal(f.signature.hash, `SHA-${/sha-?(\d+)/i.exec(alg)![1]}`, `${c.name}: ${alg}`);
      assert.equal(f.signature.weak, f.signature.hash === 'SHA-1', c.name);
    }
  });

  test('judgement agrees with openssl verify: valid, expired, not yet valid, wrong name, wrong issuer, bad signature', async () => {
    const pki = await opensslPki(join(dir, 'judge'));
    const now = Date.now();
    const other = await pki.root('facts other root');
    const cases: { name: string; leaf: string; kind: string }[] = [];
    const leaf = async (name: string, more = {}, issuer = inter, dns = ['localhost']) =>
      (await pki.leaf(name, issuer, dns, more)).certPem;
    const good = await leaf('j good');
    const der = new X509Certificate(good).raw;
    der[der.length - 10] ^= 0x55; // inside the signature value's last integer
    cases.push(
      { name: 'valid', leaf: good, kind: 'valid' },
      {
        name: 'expired',
        leaf: await leaf('j expired', { notBefore: new Date(now - 30 * DAY), notAfter: new Date(now - DAY) }),
        kind: 'expired',
      },
      {
        name: 'not yet valid',
        leaf: await leaf('j future', { notBefore: new Date(now + DAY), notAfter: new Date(now + 30 * DAY) }),
        kind: 'not_yet_valid',
      },
      {
        name: 'wrong name',
        leaf: await leaf('j other name', {}, inter, ['example.test']),
        kind: 'hostname_mismatch',
      },
      { name: 'wrong issuer', leaf: await leaf('j wrong issuer', {}, other), kind: 'missing_intermediate' },
      {
        name: 'bad signature',
        leaf: `-----BEGIN CERTIFICATE-----\n${der
          .toString('base64')
          .match(/.{1,64}/g)!
          .join('\n')}\n-----END CERTIFICATE-----\n`,
        kind: 'missing_intermediate',
      },
    );
    const store = trustStore([root.certPem], false);
    for (const c of cases) {
      const j = judgeChain([new X509Certificate(c.leaf), new X509Certificate(inter.certPem)], {
        store,
        now: new Date(),
        name: 'localhost',
      });
      assert.equal(j.ok ? 'valid' : j.failures[0].kind, c.kind, c.name);
      assert.equal(
        await opensslVerifies(dir, c.leaf, [inter.certPem], root.certPem),
        j.ok,
        `${c.name}: openssl agrees`,
      );
    }
  });
});
