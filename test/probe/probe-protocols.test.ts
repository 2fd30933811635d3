import { test, describe, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import { probeTarget } from '../../src/probe/probe.ts';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { createTestPki, type TestPki, type TestLeaf } from '../helpers/probe-pki.ts';

/** A real TLS server with the given protocol options that completes the handshake and hangs up. */
async function tlsServer(t: TestContext, opts: TlsOptions): Promise<number> {
  const server = createTlsServer(opts, (s) => {
    s.on('error', () => {});
    s.end();
  });
  server.on('tlsClientError', () => {});
  return listen(t, server);
}

async function listen(t: TestContext, server: Server): Promise<number> {
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(
    t,
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

describe('probeTarget against the TLS versions and suites servers actually offer', () => {
  let pki: TestPki;
  let leaf: TestLeaf;
  let identity: TlsOptions;
  let roots: string[];

  before(async () => {
    pki = await createTestPki();
    roots = [pki.root.certPem];
    leaf = await pki.issueLeaf({ dns: ['www.probe.test'] });
    identity = { cert: leaf.fullchainPem, key: leaf.keyPem };
  });

  test('a TLS 1.2-only server is still probed in full (no TLS 1.3-only shortcut)', async (t) => {
    const port = await tlsServer(t, { ...identity, maxVersion: 'TLSv1.2' });
    const [r] = await probeTarget(
      { host: '127.0.0.1', port, sni: 'www.probe.test' },
      { trustedRootPems: roots },
    );
    assert.equal(r.ok, true, r.error?.message);
    assert.equal(r.tlsVersion, 'TLSv1.2');
    assert.equal(r.fingerprint, fingerprintOf(leaf.certPem));
    assert.equal(r.chainPems?.length, 2, 'leaf and intermediate as sent');
    assert.equal(r.chainVerified, true);
  });

  for (const suite of ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256']) {
    test(`a TLS 1.3 server that only allows ${suite} is probed`, async (t) => {
      const port = await tlsServer(t, { ...identity, minVersion: 'TLSv1.3', ciphers: suite });
      const [r] = await probeTarget(
        { host: '127.0.0.1', port, sni: 'www.probe.test' },
        { trustedRootPems: roots },
      );
      assert.equal(r.ok, true, r.error?.message);
      assert.equal(r.tlsVersion, 'TLSv1.3');
    });
  }

  test('a server that hangs up in the middle of the handshake is a handshake error saying so', async (t) => {
    // reads the ClientHello, then closes without answering
    const port = await listen(
      t,
      createNetServer((s) => {
        s.on('error', () => {});
        s.once('data', () => s.destroy());
      }),
    );
    const [r] = await probeTarget(
      { host: '127.0.0.1', port, sni: 'www.probe.test' },
      { trustedRootPems: roots },
    );
    assert.equal(r.ok, false);
    assert.equal(r.error?.kind, 'handshake');
    assert.match(r.error!.message, /closed the connection during the TLS handshake/);
  });
});
