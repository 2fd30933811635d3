import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { probeMany } from '../../src/probe/probe-many.ts';
import { probeTarget } from '../../src/probe/probe.ts';
import type { ProbeTarget } from '../../src/core/types.ts';
import { onCleanup, suiteCleanup } from '../helpers/cleanup.ts';
import { createTestPki, type TestPki } from '../helpers/probe-pki.ts';
import { startNginx, type NginxHandle } from '../helpers/nginx.ts';
import { startSilentServer, startTlsServer, type TestServer } from '../helpers/tls-servers.ts';

describe('probeMany and all addresses', () => {
  let pki: TestPki;
  let dir: string;
  let nginx: NginxHandle;
  const servers: TestServer[] = [];

  const atEnd = suiteCleanup();
  before(async () => {
    pki = await createTestPki('many');
    const leaf = await pki.issueLeaf({ dns: ['localhost', '*.many.test'], ips: ['127.0.0.1', '::1'] });
    dir = await mkdtemp(join(tmpdir(), 'certfleet-probe-many-'));
    atEnd(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'fullchain.pem'), leaf.fullchainPem);
    await writeFile(join(dir, 'key.pem'), leaf.keyPem, { mode: 0o600 });
    nginx = await startNginx({
      certPath: join(dir, 'fullchain.pem'),
      keyPath: join(dir, 'key.pem'),
      ipv6: true,
    });
    atEnd(() => nginx.stop());
    for (let i = 0; i < 3; i++) {
      const server = await startTlsServer(leaf);
      atEnd(() => server.close());
      servers.push(server);
    }
  });

  test('one stalled target among 200 holds only its own slot: the other 200 finish meanwhile, results in order', async (t) => {
    // The stalled server answers nothing until the other 200 results are in, then hangs up. A probeMany that
    // let it block other slots would never get there: the stalled probe would end by its timeout, not last.
    const stalled = await startSilentServer();
    onCleanup(t, () => stalled.close());
    const targets: ProbeTarget[] = [];
    for (let i = 0; i < 200; i++) {
      const s = servers[i % 3];
      targets.push({ host: '127.0.0.1', port: s.port, sni: `host-${i}.many.test` });
      if (i === 7) targets.push({ host: '127.0.0.1', port: stalled.port, sni: 'dead.many.test' });
    }
    const seen: number[] = [];
    const results = await probeMany(
      targets,
      { trustedRootPems: [pki.root.certPem], timeoutMs: 60_000, concurrency: 16 },
      (_r, i) => {
        seen.push(i);
        if (seen.length === 200 && !seen.includes(8)) void stalled.close();
      },
    );
    assert.equal(results.length, 201);
    assert.deepEqual(
      results.map((r) => r.target.sni),
      targets.map((t) => t.sni),
    );
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      targets.map((_t, i) => i),
      'each target reported once',
    );
    assert.equal(seen.at(-1), 8, 'the stalled target finished last, after the hang-up');
    const failed = results.filter((r) => !r.ok);
    assert.deepEqual(
      failed.map((r) => [r.target.sni, r.error?.kind]),
      [['dead.many.test', 'handshake']],
    );
  });

  test('concurrency is bounded: never more probes in flight than asked for, and the bound is used', async (t) => {
    // In flight when the server accepts a connection = connections accepted - results reported: a worker reports
    // its result before it opens its next connection, so this never overcounts. The server holds connections
    // until `concurrency` are open, so the bound is reached; it hangs up a little later, which gives a probeMany
    // that opens one connection too many the time to show it (a busy machine can only hide that, never fail).
    const concurrency = 5;
    const held = new Set<Socket>();
    let accepted = 0;
    let reported = 0;
    let peak = 0;
    const counting = createNetServer((s) => {
      accepted++;
      peak = Math.max(peak, accepted - reported);
      held.add(s);
      s.on('error', () => {});
      if (held.size === concurrency) {
        const batch = [...held];
        held.clear();
        setTimeout(() => batch.forEach((b) => b.destroy()), 50);
      }
    });
    await new Promise<void>((r) => counting.listen(0, '127.0.0.1', r));
    onCleanup(t, () => new Promise((r) => counting.close(r)));
    const port = (counting.address() as AddressInfo).port;
    const targets = Array.from({ length: 4 * concurrency }, (_x, i) => ({
      host: '127.0.0.1',
      port,
      sni: `n${i}.many.test`,
    }));
    const results = await probeMany(targets, { concurrency, timeoutMs: 30_000 }, () => reported++);
    assert.deepEqual(
      results.map((r) => [r.target.sni, r.error?.kind]),
      targets.map((x) => [x.sni, 'handshake']),
    );
    assert.equal(accepted, targets.length, 'one connection per target');
    assert.equal(peak, concurrency);
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
