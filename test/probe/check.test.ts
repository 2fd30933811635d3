import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHostPort, runCheck } from '../../src/cli/check.ts';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { suiteCleanup } from '../helpers/cleanup.ts';
import { createTestPki, type TestPki, type TestLeaf } from '../helpers/probe-pki.ts';
import { closedPort, startTlsServer, type TestServer } from '../helpers/tls-servers.ts';

const DAY = 86_400_000;
const ENTRY = join(import.meta.dirname, 'check-entry.ts');

function runChild(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', ENTRY, 'check', ...args],
      { timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('certfleet check', () => {
  let pki: TestPki;
  let leaf: TestLeaf;
  let dir: string;
  let caFile: string;
  let good: TestServer;
  let goodV6: TestServer;
  let soon: TestServer;
  let broken: TestServer;

  const atEnd = suiteCleanup();
  before(async () => {
    pki = await createTestPki('check');
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
    const r = await runCheck([`localhost:${good.port}`, '--ca-file', caFile]);
    assert.equal(r.exitCode, 0, r.output + r.stderr);
    for (const re of [
      /subject\s+CN=localhost/,
      /sans\s+localhost, www\.check\.test, 127\.0\.0\.1/,
      /issuer\s+CN=check intermediate/,
      /serial\s+[0-9A-F]+/,
      new RegExp(`fingerprint\\s+sha256 ${fingerprintOf(leaf.certPem)}`),
      /not after .*\(8\d days left\)/,
      /tls\s+TLSv1\.3, handshake [\d.]+ ms/,
      /chain as sent \(2\):\n  0  CN=localhost  \(issued by CN=check intermediate\)\n  1  CN=check intermediate  \(issued by CN=check root\)/,
      /verdict\s+VALID/,
    ])
      assert.match(r.output, re);
  });

  test('--json gives the probe results with days left and the verdict', async () => {
    const r = await runCheck([
      `127.0.0.1:${good.port}`,
      '--ca-file',
      caFile,
      '--json',
      '--sni',
      'www.check.test',
    ]);
    assert.equal(r.exitCode, 0);
    const doc = JSON.parse(r.output);
    assert.equal(doc.ok, true);
    assert.equal(doc.days, 14);
    assert.equal(doc.results[0].fingerprint, fingerprintOf(leaf.certPem));
    assert.equal(doc.results[0].target.sni, 'www.check.test');
    assert.ok(doc.results[0].daysLeft >= 88);
  });

  test('expiring within --days exits 1 with the reason; --days 0 accepts it', async () => {
    const r = await runCheck([`localhost:${soon.port}`, '--ca-file', caFile]);
    assert.equal(r.exitCode, 1);
    assert.match(r.output, /verdict\s+EXPIRING: the certificate expires in 4 days, within the 14-day limit/);
    const relaxed = await runCheck([`localhost:${soon.port}`, '--ca-file', caFile, '--days', '0']);
    assert.equal(relaxed.exitCode, 0, relaxed.output);
    const strict = await runCheck([`localhost:${good.port}`, '--ca-file', caFile, '--days', '120']);
    assert.equal(strict.exitCode, 1);
  });

  test('invalid and unreachable exit 1 with reason and fix', async () => {
    const chain = await runCheck([`localhost:${broken.port}`, '--ca-file', caFile]);
    assert.equal(chain.exitCode, 1);
    assert.match(chain.output, /chain as sent \(1\)/);
    assert.match(
      chain.output,
      /verdict\s+INVALID \(untrusted\): .*missing intermediate.*Fix: serve the full chain/,
    );
    const untrusted = await runCheck([`localhost:${good.port}`]);
    assert.equal(untrusted.exitCode, 1);
    assert.match(untrusted.output, /INVALID \(untrusted\).*--ca-file/);
    const refused = await runCheck([`127.0.0.1:${await closedPort()}`]);
    assert.equal(refused.exitCode, 1);
    assert.match(refused.output, /INVALID \(refused\)/);
    const wrong = await runCheck([`localhost:${good.port}`, '--ca-file', caFile, '--sni', 'nope.test']);
    assert.equal(wrong.exitCode, 1);
    assert.match(wrong.output, /INVALID \(hostname_mismatch\)/);
  });

  test('usage errors exit 2 with a message and a hint, never a stack', async () => {
    for (const args of [
      ['no-port-here'],
      ['localhost:0'],
      ['localhost:443', '--starttls', 'ftp'],
      ['localhost:443', '--days', 'soon'],
      ['localhost:443', '--ca-file', join(dir, 'missing.pem')],
      ['localhost:443', '--bogus'],
      [],
    ]) {
      const r = await runCheck(args);
      assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.output}${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.ok(r.stderr.length > 0);
    }
    const r = await runCheck(['no-port-here']);
    assert.match(r.stderr, /has no port\nhint: write it as host:port/);
  });

  test('as a child process: IPv6 literal, exit codes and stdout', async () => {
    const ok = await runChild([`[::1]:${goodV6.port}`, '--ca-file', caFile]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /target\s+\[::1\]:\d+/);
    assert.match(ok.stdout, /verdict\s+VALID/);
    const bad = await runChild([`localhost:${broken.port}`, '--ca-file', caFile, '--json']);
    assert.equal(bad.code, 1);
    assert.equal(JSON.parse(bad.stdout).results[0].error.kind, 'untrusted');
    const usage = await runChild(['[::1]443']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /hint:/);
    assert.doesNotMatch(usage.stderr, /\n\s+at /);
  });
});
