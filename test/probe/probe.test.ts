import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeTarget } from '../../src/probe/probe.ts';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { suiteCleanup } from '../helpers/cleanup.ts';
import { createTestPki, type TestPki, type TestLeaf } from '../helpers/probe-pki.ts';
import { startNginx, type NginxHandle } from '../helpers/nginx.ts';
import {
  closedPort,
  startPlainTextServer,
  startSilentServer,
  startTlsServer,
} from '../helpers/tls-servers.ts';

const DAY = 86_400_000;

describe('probeTarget', () => {
  let pki: TestPki;
  let good: TestLeaf;
  let dir: string;
  let nginx: NginxHandle;
  let roots: string[];

  const atEnd = suiteCleanup();
  before(async () => {
    pki = await createTestPki();
    roots = [pki.root.certPem];
    good = await pki.issueLeaf({ dns: ['localhost', 'www.probe.test'], ips: ['127.0.0.1'] });
    dir = await mkdtemp(join(tmpdir(), 'certfleet-probe-'));
    atEnd(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'fullchain.pem'), good.fullchainPem);
    await writeFile(join(dir, 'leaf-only.pem'), good.certPem);
    await writeFile(join(dir, 'key.pem'), good.keyPem, { mode: 0o600 });
    nginx = await startNginx({ certPath: join(dir, 'fullchain.pem'), keyPath: join(dir, 'key.pem') });
    atEnd(() => nginx.stop());
  });

  test('a correct certificate served by real nginx is valid, with the facts of what is served', async () => {
    const [r] = await probeTarget({ host: 'localhost', port: nginx.port }, { trustedRootPems: roots });
    assert.equal(r.ok, true, r.error?.message);
    assert.equal(r.error, undefined);
    assert.equal(r.target.address, '127.0.0.1');
    assert.equal(r.fingerprint, fingerprintOf(good.certPem));
    assert.match(r.fingerprint!, /^[0-9a-f]{64}$/);
    assert.equal(r.subject, 'CN=localhost');
    assert.deepEqual(r.sans, ['localhost', 'www.probe.test', '127.0.0.1']);
    assert.equal(r.chainVerified, true);
    assert.equal(r.hostnameMatches, true);
    assert.equal(r.chainPems?.length, 2, 'leaf and intermediate as sent');
    assert.equal(fingerprintOf(r.chainPems![1]), fingerprintOf(pki.intermediate.certPem));
    assert.match(r.tlsVersion ?? '', /^TLSv1\.[23]$/);
    assert.ok(typeof r.handshakeMs === 'number' && r.handshakeMs > 0, `handshakeMs ${r.handshakeMs}`);
    assert.ok(new Date(r.notAfter!).getTime() > Date.now());
  });

  test('without the private root the same chain is untrusted, and the fix names --ca-file', async () => {
    const [r] = await probeTarget({ host: 'localhost', port: nginx.port }, {});
    assert.equal(r.ok, false);
    assert.equal(r.error?.kind, 'untrusted');
    assert.equal(r.chainVerified, false);
    assert.match(r.error!.message, /ca-file/);
    assert.equal(r.fingerprint, fingerprintOf(good.certPem), 'facts are still reported');
  });

  test('an IP target is checked against IP SANs, and SNI overrides the name checked', async () => {
    const [ip] = await probeTarget({ host: '127.0.0.1', port: nginx.port }, { trustedRootPems: roots });
    assert.equal(ip.ok, true, ip.error?.message);
    const [sni] = await probeTarget(
      { host: '127.0.0.1', port: nginx.port, sni: 'www.probe.test' },
      { trustedRootPems: roots },
    );
    assert.equal(sni.ok, true, sni.error?.message);
  });

  test('a name the certificate does not cover is a hostname_mismatch naming what it does cover', async () => {
    const [r] = await probeTarget(
      { host: '127.0.0.1', port: nginx.port, sni: 'mail.other.test' },
      { trustedRootPems: roots },
    );
    assert.equal(r.ok, false);
    assert.equal(r.error?.kind, 'hostname_mismatch');
    assert.equal(r.hostnameMatches, false);
    assert.equal(r.chainVerified, true);
    assert.match(r.error!.message, /mail\.other\.test/);
    assert.match(r.error!.message, /www\.probe\.test/);
  });

  test('dates are judged against the given now: 100 days later the same certificate is expired', async () => {
    const [r] = await probeTarget(
      { host: 'localhost', port: nginx.port },
      { trustedRootPems: roots, now: new Date(Date.now() + 100 * DAY) },
    );
    assert.equal(r.error?.kind, 'expired');
    assert.match(r.error!.message, /renew/);
  });

  test('nginx reload to a leaf without its intermediate gives a broken chain (missing intermediate)', async () => {
    await nginx.writeConfig({ certPath: join(dir, 'leaf-only.pem'), keyPath: join(dir, 'key.pem') });
    assert.equal((await nginx.test()).ok, true);
    try {
      await nginx.reload();
      const [r] = await probeTarget({ host: 'localhost', port: nginx.port }, { trustedRootPems: roots });
      assert.equal(r.ok, false);
      assert.equal(r.error?.kind, 'missing_intermediate');
      assert.equal(r.chainPems?.length, 1);
      assert.match(r.chainError!, /missing intermediate/);
      assert.match(r.error!.message, /full chain/);
    } finally {
      await nginx.writeConfig({ certPath: join(dir, 'fullchain.pem'), keyPath: join(dir, 'key.pem') });
      await nginx.reload();
    }
    const [back] = await probeTarget({ host: 'localhost', port: nginx.port }, { trustedRootPems: roots });
    assert.equal(back.ok, true, back.error?.message);
  });

  test('nginx test() reports a broken config without touching the running server', async () => {
    await nginx.writeConfig({ certPath: join(dir, 'missing.pem'), keyPath: join(dir, 'key.pem') });
    try {
      const t = await nginx.test();
      assert.equal(t.ok, false);
      assert.match(t.stderr, /missing\.pem/);
    } finally {
      await nginx.writeConfig({ certPath: join(dir, 'fullchain.pem'), keyPath: join(dir, 'key.pem') });
    }
  });

  test('an expired leaf is reported as expired with the date and the fix', async () => {
    const expired = await pki.issueLeaf({
      dns: ['localhost'],
      notBefore: new Date(Date.now() - 120 * DAY),
      notAfter: new Date(Date.now() - 30 * DAY),
    });
    const server = await startTlsServer(expired);
    try {
      const [r] = await probeTarget({ host: 'localhost', port: server.port }, { trustedRootPems: roots });
      assert.equal(r.ok, false);
      assert.equal(r.error?.kind, 'expired');
      assert.equal(r.chainVerified, false);
      assert.match(r.error!.message, /expired at .* \(30 days ago\)/);
    } finally {
      await server.close();
    }
  });

  test('a closed port is refused', async () => {
    const [r] = await probeTarget({ host: '127.0.0.1', port: await closedPort() });
    assert.equal(r.ok, false);
    assert.equal(r.error?.kind, 'refused');
    assert.match(r.error!.message, /nothing listens/);
  });

  test('a server that accepts and never answers times out on time and the socket is gone', async () => {
    const silent = await startSilentServer();
    try {
      const [r] = await probeTarget({ host: '127.0.0.1', port: silent.port }, { timeoutMs: 400 });
      assert.equal(r.error?.kind, 'timeout');
      assert.match(r.error!.message, /within 400 ms \(stuck in the TLS handshake\)/);
    } finally {
      await silent.close();
    }
  });

  test('an AbortSignal cancels a probe at once', async () => {
    const silent = await startSilentServer();
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      const [r] = await probeTarget(
        { host: '127.0.0.1', port: silent.port },
        { timeoutMs: 10_000, signal: ac.signal },
      );
      // 'other' (not 'timeout'): the abort ended the probe, not its 10 s timeout
      assert.equal(r.error?.kind, 'other');
      assert.match(r.error!.message, /cancelled/);
    } finally {
      await silent.close();
    }
  });

  test('a name that does not resolve is a dns error (resolver injected: no traffic leaves loopback)', async () => {
    const lookup = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    const [r] = await probeTarget({ host: 'nowhere.invalid', port: 443 }, { lookup });
    assert.equal(r.error?.kind, 'dns');
    assert.match(r.error!.message, /nowhere\.invalid/);
  });

  test('plain text on the port is a handshake error that says so', async () => {
    const plain = await startPlainTextServer();
    try {
      const [r] = await probeTarget({ host: '127.0.0.1', port: plain.port }, { timeoutMs: 2000 });
      assert.equal(r.error?.kind, 'handshake');
      assert.match(r.error!.message, /plain text/);
      assert.doesNotMatch(r.error!.message, /openssl|\.c:\d+/, 'no OpenSSL internals');
    } finally {
      await plain.close();
    }
  });

  test('invalid targets are rejected with a CertfleetError, not probed', async () => {
    await assert.rejects(probeTarget({ host: 'localhost', port: 0 }), { name: 'CertfleetError' });
    await assert.rejects(probeTarget({ host: '', port: 443 }), { name: 'CertfleetError' });
  });
});
