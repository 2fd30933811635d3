import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeMany } from '../../src/probe/probe-many.ts';
import { probeTarget } from '../../src/probe/probe.ts';
import type { ProbeTarget } from '../../src/core/types.ts';
import { createTestPki, type TestPki } from '../helpers/probe-pki.ts';
import { startNginx, type NginxHandle } from '../helpers/nginx.ts';
import { startSilentServer, startTlsServer, type TestServer } from '../helpers/tls-servers.ts';

describe('probeMany and all addresses', () => {
  let pki: TestPki;
  let dir: string;
  let nginx: NginxHandle;
  const servers: TestServer[] = [];

  before(async () => {
    pki = await createTestPki('many');
    const leaf = await pki.issueLeaf({ dns: ['localhost', '*.many.test'], ips: ['127.0.0.1', '::1'] });
    dir = await mkdtemp(join(tmpdir(), 'certfleet-probe-many-'));
    await writeFile(join(dir, 'fullchain.pem'), leaf.fullchainPem);
    await writeFile(join(dir, 'key.pem'), leaf.keyPem, { mode: 0o600 });
    nginx = await startNginx({
      certPath: join(dir, 'fullchain.pem'),
      keyPath: join(dir, 'key.pem'),
      ipv6: true,
    });
    for (let i = 0; i < 3; i++) servers.push(await startTlsServer(leaf));
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await nginx?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('one silent target among 200 holds only its own slot: all finish promptly, in order', async () => {
    const silent = await startSilentServer();
    servers.push(silent);
    const targets: ProbeTarget[] = [];
    for (let i = 0; i < 200; i++) {
      const s = servers[i % 3];
      targets.push({ host: '127.0.0.1', port: s.port, sni: `host-${i}.many.test` });
      if (i === 7) targets.push({ host: '127.0.0.1', port: silent.port, sni: 'dead.many.test' });
    }
    const seen: number[] = [];
    const t0 = Date.now();
    const results = await probeMany(
      targets,
      { trustedRootPems: [pki.root.certPem], timeoutMs: 1500, concurrency: 16 },
      (_r, i) => seen.push(i),
    );
    const took = Date.now() - t0;
    assert.equal(results.length, 201);
    assert.equal(seen.length, 201);
    assert.deepEqual(
      results.map((r) => r.target.sni),
      targets.map((t) => t.sni),
    );
    const failed = results.filter((r) => !r.ok);
    assert.deepEqual(
      failed.map((r) => [r.target.sni, r.error?.kind]),
      [['dead.many.test', 'timeout']],
    );
    // the dead target costs one slot its 1.5 s timeout; the other 200 share the other 15 slots meanwhile
    assert.ok(took < 1500 + 3000, `took ${took} ms`);
    const deadAt = seen.indexOf(8);
    assert.ok(deadAt > 100, `the dead target finished late (position ${deadAt}), not blocking the rest`);
  });

  test('concurrency is bounded', async () => {
    let active = 0;
    let peak = 0;
    const net = await import('node:net');
    const counting = net.createServer((s) => {
      active++;
      peak = Math.max(peak, active);
      s.on('close', () => active--);
      s.on('error', () => {});
      setTimeout(() => s.destroy(), 50);
    });
    await new Promise<void>((r) => counting.listen(0, '127.0.0.1', r));
    try {
      const port = (counting.address() as { port: number }).port;
      const targets = Array.from({ length: 40 }, () => ({ host: '127.0.0.1', port }));
      const results = await probeMany(targets, { concurrency: 5, timeoutMs: 2000 });
      assert.equal(results.length, 40);
      assert.ok(peak <= 5 && peak >= 2, `peak ${peak}`);
    } finally {
      counting.close();
    }
  });

  test('allAddresses on localhost probes every address it resolves to', async () => {
    const expected = (await lookup('localhost', { all: true })).map((a) => a.address);
    const results = await probeTarget(
      { host: 'localhost', port: nginx.port },
      { trustedRootPems: [pki.root.certPem], allAddresses: true },
    );
    assert.deepEqual(
      results.map((r) => r.target.address),
      expected,
    );
    for (const r of results) assert.equal(r.ok, true, r.error?.message);
    const single = await probeTarget(
      { host: 'localhost', port: nginx.port },
      { trustedRootPems: [pki.root.certPem] },
    );
    assert.equal(single.length, 1);
  });

  test('allAddresses reaches IPv4 and IPv6 (::1) when the name resolves to both', async () => {
    // This machine's /etc/hosts maps localhost to 127.0.0.1 only, so the dual-stack case uses an injected resolver.
    const results = await probeTarget(
      { host: 'localhost', port: nginx.port },
      {
        trustedRootPems: [pki.root.certPem],
        allAddresses: true,
        lookup: async () => ['127.0.0.1', '::1'],
      },
    );
    assert.deepEqual(
      results.map((r) => [r.target.address, r.ok, r.tlsVersion !== undefined]),
      [
        ['127.0.0.1', true, true],
        ['::1', true, true],
      ],
    );
    assert.equal(results[0].fingerprint, results[1].fingerprint);
  });

  test('one address down is reported per address, the others stay ok', async () => {
    const v4only = servers[0];
    const results = await probeTarget(
      { host: 'localhost', port: v4only.port },
      { trustedRootPems: [pki.root.certPem], allAddresses: true, lookup: async () => ['127.0.0.1', '::1'] },
    );
    assert.deepEqual(
      results.map((r) => [r.target.address, r.ok ? 'ok' : r.error?.kind]),
      [
        ['127.0.0.1', 'ok'],
        ['::1', 'refused'],
      ],
    );
  });
});
