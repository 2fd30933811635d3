import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executeCheck, parseHostPort, type CheckOptions } from '../../src/cli/check.ts';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { suiteCleanup } from '../helpers/cleanup.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestPki, type TestPki, type TestLeaf } from '../helpers/probe-pki.ts';
import { closedPort, startTlsServer, type TestServer } from '../helpers/tls-servers.ts';

const DAY = 86_400_000;

/** The command's work in-process, output captured (the real binary is spawned where flags and exit codes matter). */
async function check(hostPort: string, options: CheckOptions = {}, env: NodeJS.ProcessEnv = {}) {
  let output = '';
  let stderr = '';
  const code = await executeCheck(hostPort, options, {
    out: (t) => void (output += t),
    err: (t) => void (stderr += t),
    env,
  });
  return { code, output, stderr };
}

/** No trust settings from the machine running the tests leak into the child. */
const CLEAN_ENV = { NODE_EXTRA_CA_CERTS: '', SSL_CERT_FILE: '', CERTFLEET_CA_FILE: '', CERTFLEET_CONFIG: '' };

describe('certfleet check', () => {
  let pki: TestPki;
  let otherPki: TestPki;
  let leaf: TestLeaf;
  let dir: string;
  let caFile: string;
  let good: TestServer;
  let goodV6: TestServer;
  let soon: TestServer;
  let broken: TestServer;
  let other: TestServer;

  const atEnd = suiteCleanup();
  before(async () => {
    pki = await createTestPki('check');
    otherPki = await createTestPki('check other');
    leaf = await pki.issueLeaf({ dns: ['localhost', 'www.check.test'], ips: ['127.0.0.1', '::1'] });
    const expiring = await pki.issueLeaf({ dns: ['localhost'], notAfter: new Date(Date.now() + 5 * DAY) });
    dir = await mkdtemp(join(tmpdir(), 'certfleet-check-'));
    atEnd(() => rm(dir, { recursive: true, force: true }));
    caFile = join(dir, 'ca.pem');
    await writeFile(caFile, pki.root.certPem);
    good = await startTlsServer(leaf);
    atEnd(() => good.close());
    goodV6 = await startTlsServer(leaf, { host: '::1' });
    atEnd(() => goodV6.close());
    soon = await startTlsServer(expiring);
    atEnd(() => soon.close());
    broken = await startTlsServer({ certPem: leaf.certPem, keyPem: leaf.keyPem });
    atEnd(() => broken.close());
    other = await startTlsServer(await otherPki.issueLeaf({ dns: ['localhost'] }));
    atEnd(() => other.close());
  });

  test('parses host:port, [v6]:port and refuses the rest as usage errors', () => {
    assert.deepEqual(parseHostPort('example.com:443'), { host: 'example.com', port: 443 });
    assert.deepEqual(parseHostPort('[::1]:8443'), { host: '::1', port: 8443 });
    assert.deepEqual(parseHostPort('10.0.0.5:25'), { host: '10.0.0.5', port: 25 });
    for (const bad of [
      'example.com',
      'example.com:',
      'example.com:99999',
      '::1:443',
      '[nothost]:443',
      'a b:1',
      ':443',
    ])
      assert.throws(() => parseHostPort(bad), { name: 'CertfleetError' }, bad);
  });

  test('a valid certificate: exit 0 and a full description of what is served', async () => {
    const r = await check(`localhost:${good.port}`, { caFile });
    assert.equal(r.code, 0, r.output + r.stderr);
    for (const re of [
      /subject\s+CN=localhost/,
      /sans\s+localhost, www\.check\.test, 127\.0\.0\.1/,
      /issuer\s+CN=check intermediate/,
      /serial\s+[0-9A-F]+/,
      new RegExp(`fingerprint\\s+sha256 ${fingerprintOf(leaf.certPem)}`),
      /key\s+EC P-256 \(256 bits\)/,
      /signature\s+ECDSA with SHA-256/,
      /eku\s+serverAuth/,
      /not after .*\(8\d days left\)/,
      /tls\s+TLSv1\.3, handshake [\d.]+ ms, TLS_(AES_\d+_GCM|CHACHA20_POLY1305)_SHA\d+, X25519/,
      /chain as sent \(2\):\n  0  CN=localhost  \(issued by CN=check intermediate\)  \S+ → \S+\n  1  CN=check intermediate  \(issued by CN=check root\)/,
      /verdict\s+VALID/,
    ])
      assert.match(r.output, re);
  });

  test('--json: the facts of the handshake and of every chain certificate, days left and the verdict', async () => {
    const r = await check(`127.0.0.1:${good.port}`, { caFile, json: true, sni: 'www.check.test' });
    assert.equal(r.code, 0);
    const doc = JSON.parse(r.output);
    assert.equal(doc.ok, true);
    assert.equal(doc.days, 14);
    const res = doc.results[0];
    assert.equal(res.fingerprint, fingerprintOf(leaf.certPem));
    assert.equal(res.target.sni, 'www.check.test');
    assert.ok(res.daysLeft >= 88);
    assert.deepEqual(res.key, { type: 'ec', bits: 256, curve: 'prime256v1' });
    assert.equal(res.signatureAlgorithm, 'ECDSA with SHA-256');
    assert.deepEqual(res.eku, ['serverAuth']);
    assert.match(res.cipher, /^TLS_(AES_\d+_GCM|CHACHA20_POLY1305)_SHA\d+$/);
    assert.equal(res.group, 'X25519');
    assert.deepEqual(
      res.chain.map((c: { subject: string; issuer: string; fingerprint: string }) => [
        c.subject,
        c.issuer,
        c.fingerprint,
      ]),
      [
        ['CN=localhost', 'CN=check intermediate', fingerprintOf(leaf.certPem)],
        ['CN=check intermediate', 'CN=check root', fingerprintOf(pki.intermediate.certPem)],
      ],
    );
    assert.ok(
      Date.parse(res.chain[1].notBefore) < Date.now() && Date.parse(res.chain[1].notAfter) > Date.now(),
    );
    assert.equal(res.warnings, undefined);
  });

  test('expiring within --days exits 1 with the reason; --days 0 accepts it', async () => {
    const r = await check(`localhost:${soon.port}`, { caFile });
    assert.equal(r.code, 1);
    assert.match(r.output, /verdict\s+EXPIRING: the certificate expires in 4 days, within the 14-day limit/);
    assert.equal((await check(`localhost:${soon.port}`, { caFile, days: 0 })).code, 0);
    assert.equal((await check(`localhost:${good.port}`, { caFile, days: 120 })).code, 1);
  });

  test('invalid and unreachable exit 1 with the real cause and the fix', async () => {
    const chain = await check(`localhost:${broken.port}`, { caFile });
    assert.equal(chain.code, 1);
    assert.match(chain.output, /chain as sent \(1\)/);
    assert.match(
      chain.output,
      /verdict\s+INVALID \(missing_intermediate\): .*"CN=check intermediate" was not sent.*Fix: serve the full chain/,
    );
    const untrusted = await check(`localhost:${good.port}`);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.output, /INVALID \(untrusted\).*--ca-file/);
    const refused = await check(`127.0.0.1:${await closedPort()}`);
    assert.equal(refused.code, 1);
    assert.match(refused.output, /failed at\s+connect/);
    assert.match(refused.output, /INVALID \(refused\)/);
    const wrong = await check(`localhost:${good.port}`, { caFile, sni: 'nope.test' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.output, /INVALID \(hostname_mismatch\)/);
  });

  test('usage errors exit 2 with a message and a hint, never a stack', async () => {
    // commander's own refusals, through the real binary
    for (const args of [['localhost:443', '--days', 'soon'], ['localhost:443', '--bogus'], []]) {
      const r = await runCli(['check', ...args], CLEAN_ENV);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.ok(r.stderr.length > 0);
    }
    // the command's own, in-process
    for (const [hostPort, options] of [
      ['no-port-here', {}],
      ['localhost:0', {}],
      ['localhost:443', { caFile: join(dir, 'missing.pem') }],
    ] as const) {
      const r = await check(hostPort, options);
      assert.equal(r.code, 2, hostPort);
      assert.match(r.stderr, /\nhint: /);
    }
    assert.match((await check('no-port-here')).stderr, /has no port\nhint: write it as host:port/);
  });

  test('the real binary: exit codes, and --ca-file / --json after the command are honoured', async () => {
    const json = async (args: string[], env = {}) => {
      const r = await runCli(['check', ...args, '--json'], { ...CLEAN_ENV, ...env });
      return { ...r, doc: JSON.parse(r.stdout) };
    };
    const valid = await json([`localhost:${good.port}`, '--ca-file', caFile]);
    assert.equal(valid.code, 0, valid.stdout + valid.stderr);
    assert.equal(valid.doc.ok, true);
    const refused = await json([`127.0.0.1:${await closedPort()}`]);
    assert.equal(refused.code, 1);
    assert.equal(refused.doc.results[0].error.kind, 'refused');
    assert.equal(refused.doc.results[0].failedAt, 'connect');
    const untrusted = await json([`localhost:${good.port}`]);
    assert.equal(untrusted.code, 1);
    assert.equal(untrusted.doc.results[0].error.kind, 'untrusted');
    const expiring = await json([`localhost:${soon.port}`, '--ca-file', caFile]);
    assert.equal(expiring.code, 1);
    assert.equal(expiring.doc.ok, false);
    assert.match(expiring.doc.results[0].verdict, /^EXPIRING/);
    const usage = await json(['no-port-here']);
    assert.equal(usage.code, 2);
    assert.equal(usage.doc.error.code, 'BAD_REQUEST');
    // global options before the command work the same
    const before = await runCli(
      ['--json', '--ca-file', caFile, 'check', `localhost:${good.port}`],
      CLEAN_ENV,
    );
    assert.equal(before.code, 0, before.stderr);
    assert.equal(JSON.parse(before.stdout).ok, true);
    const v6 = await runCli(['check', `[::1]:${goodV6.port}`, '--ca-file', caFile], CLEAN_ENV);
    assert.equal(v6.code, 0, v6.stdout + v6.stderr);
    assert.match(v6.stdout, /target\s+\[::1\]:\d+/);
  });

  test('trusts --ca-file, NODE_EXTRA_CA_CERTS and SSL_CERT_FILE (files of several roots) besides the system roots', async () => {
    const both = join(dir, 'both.pem');
    await writeFile(both, otherPki.root.certPem + pki.root.certPem);
    const onlyOther = join(dir, 'other.pem');
    await writeFile(onlyOther, otherPki.root.certPem);
    const code = async (port: number, options: CheckOptions, env: NodeJS.ProcessEnv = {}) =>
      (await check(`localhost:${port}`, options, env)).code;
    assert.equal(await code(good.port, { caFile: both }), 0);
    assert.equal(await code(good.port, {}, { NODE_EXTRA_CA_CERTS: both }), 0);
    assert.equal(await code(good.port, {}, { SSL_CERT_FILE: both }), 0);
    assert.equal(await code(good.port, { caFile: onlyOther }), 1);
    // the sources add up: each file brings its own root
    assert.equal(await code(other.port, { caFile: onlyOther }, { SSL_CERT_FILE: caFile }), 0);
    assert.equal(await code(good.port, { caFile: onlyOther }, { SSL_CERT_FILE: caFile }), 0);
    const unreadable = await check(`localhost:${good.port}`, {}, { SSL_CERT_FILE: join(dir, 'missing.pem') });
    assert.equal(unreadable.code, 2);
    assert.match(unreadable.stderr, /cannot read SSL_CERT_FILE/);
    // the binary reads the real environment
    const r = await runCli(['check', `localhost:${good.port}`], {
      ...CLEAN_ENV,
      NODE_EXTRA_CA_CERTS: caFile,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});
