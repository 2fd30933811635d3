import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { probeTarget } from '../../src/probe/probe.ts';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { createTestPki, type TestPki, type TestLeaf } from '../helpers/probe-pki.ts';
import { startStartTlsServer, startSilentServer, type MailProtocol } from '../helpers/tls-servers.ts';

describe('STARTTLS probes', () => {
  let pki: TestPki;
  let leaf: TestLeaf;
  before(async () => {
    pki = await createTestPki('starttls');
    leaf = await pki.issueLeaf({ dns: ['mail.probe.test'] });
  });

  for (const protocol of ['smtp', 'imap', 'pop3'] as MailProtocol[]) {
    test(`${protocol}: upgrades, then verifies the certificate behind STARTTLS`, async (t) => {
      const server = await startStartTlsServer(protocol, leaf);
      onCleanup(t, () => server.close());
      const [r] = await probeTarget(
        { host: '127.0.0.1', port: server.port, sni: 'mail.probe.test', starttls: protocol },
        { trustedRootPems: [pki.root.certPem], timeoutMs: 3000 },
      );
      assert.equal(r.ok, true, r.error?.message);
      assert.equal(r.fingerprint, fingerprintOf(leaf.certPem));
      assert.equal(r.chainVerified, true);
    });

    test(`${protocol}: a server that does not offer STARTTLS gets a starttls error with the fix`, async (t) => {
      const server = await startStartTlsServer(protocol, leaf, { offerStartTls: false });
      onCleanup(t, () => server.close());
      const [r] = await probeTarget(
        { host: '127.0.0.1', port: server.port, starttls: protocol },
        { trustedRootPems: [pki.root.certPem], timeoutMs: 3000 },
      );
      assert.equal(r.ok, false);
      assert.equal(r.error?.kind, 'starttls');
      assert.match(r.error!.message, /does not offer (STARTTLS|STLS)/);
      assert.match(r.error!.message, /without --starttls/);
    });
  }

  test('a mail port that never greets times out in the STARTTLS stage', async (t) => {
    const silent = await startSilentServer();
    onCleanup(t, () => silent.close());
    const [r] = await probeTarget(
      { host: '127.0.0.1', port: silent.port, starttls: 'smtp' },
      { timeoutMs: 300 },
    );
    assert.equal(r.error?.kind, 'timeout');
    assert.match(r.error!.message, /STARTTLS exchange/);
  });

  test('STARTTLS against a TLS-only port ends at the timeout in the STARTTLS stage, not as a hang', async (t) => {
    const { startTlsServer } = await import('../helpers/tls-servers.ts');
    const tlsOnly = await startTlsServer(leaf);
    onCleanup(t, () => tlsOnly.close());
    const [r] = await probeTarget(
      { host: '127.0.0.1', port: tlsOnly.port, starttls: 'pop3' },
      { timeoutMs: 500 },
    );
    // both sides wait for the other to speak first (greeting vs ClientHello): only the timeout ends it
    assert.equal(r.error?.kind, 'timeout');
    assert.match(r.error!.message, /within 500 ms \(stuck in the STARTTLS exchange\)/);
  });
});
