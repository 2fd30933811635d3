/**
 * Verify judges what is served with the one chain judgement (src/pki/judge-chain.ts): the right leaf is not
 * enough when clients would refuse the chain it comes with. Real TLS servers on loopback.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { deployLocally } from '../../src/agent/local-target.ts';
import { verifyServed } from '../../src/deploy/verify-served.ts';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { startTlsServer, type TlsIdentity } from '../helpers/tls-servers.ts';
import { makeTestPki, type TestPki } from '../helpers/test-pki.ts';
import { tempDir } from '../helpers/tmp.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { NAMES, recorder, requestFor, subscriptionOf } from './helpers.ts';

async function serve(t: TestContext, id: TlsIdentity): Promise<number> {
  const server = await startTlsServer(id);
  onCleanup(t, () => server.close());
  return server.port;
}

const leafOnly = (p: TestPki): TlsIdentity => ({ certPem: p.bundle.certPem, keyPem: p.bundle.keyPem });
const withChain = (p: TestPki): TlsIdentity => ({ ...leafOnly(p), chainPems: p.bundle.chainPems });
const expect = (p: TestPki, chainPems = p.bundle.chainPems) => ({
  fingerprint: fingerprintOf(p.bundle.certPem),
  chainPems,
});
const quick = { totalMs: 1500, intervalMs: 50 };

describe('verify judges the served chain once the leaf matches', async () => {
  const pki = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });

  test('the leaf with its intermediate is verified', async (t) => {
    const port = await serve(t, withChain(pki));
    const v = await verifyServed({ host: '127.0.0.1', port, sni: NAMES[0] }, expect(pki), quick);
    assert.equal(v.ok, true, v.message);
    assert.equal(v.servedFingerprint, fingerprintOf(pki.bundle.certPem));
  });

  test('the right leaf without its intermediate fails as a missing intermediate', async (t) => {
    const port = await serve(t, leafOnly(pki));
    const v = await verifyServed({ host: '127.0.0.1', port, sni: NAMES[0] }, expect(pki), quick);
    assert.equal(v.ok, false);
    assert.equal(v.chainFailure, 'missing_intermediate');
    assert.equal(v.servedFingerprint, fingerprintOf(pki.bundle.certPem));
    assert.match(v.message, /serves the deployed certificate, but .*missing intermediate/);
  });

  test('a bundle that carries its root: the intermediate is still required, the root is trusted', async (t) => {
    const full = expect(pki, [...pki.bundle.chainPems, pki.rootPem]);
    const bare = await verifyServed(
      { host: '127.0.0.1', port: await serve(t, leafOnly(pki)), sni: NAMES[0] },
      full,
      quick,
    );
    assert.equal(bare.chainFailure, 'missing_intermediate');
    const good = await verifyServed(
      { host: '127.0.0.1', port: await serve(t, withChain(pki)), sni: NAMES[0] },
      full,
      quick,
    );
    assert.equal(good.ok, true, good.message);
  });

  test('a name the leaf does not cover fails as a hostname mismatch', async (t) => {
    const port = await serve(t, withChain(pki));
    const v = await verifyServed({ host: '127.0.0.1', port, sni: 'other.deploy.test' }, expect(pki), quick);
    assert.equal(v.ok, false);
    assert.equal(v.chainFailure, 'hostname_mismatch');
  });

  test('configured roots are the trust: a chain that does not reach them fails', async (t) => {
    const other = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    const port = await serve(t, withChain(pki));
    const v = await verifyServed(
      { host: '127.0.0.1', port, sni: NAMES[0] },
      { ...expect(pki), trustedRootPems: [other.rootPem] },
      quick,
    );
    assert.equal(v.chainFailure, 'untrusted');
    const ok = await verifyServed(
      { host: '127.0.0.1', port, sni: NAMES[0] },
      { ...expect(pki), trustedRootPems: [pki.rootPem] },
      quick,
    );
    assert.equal(ok.ok, true, ok.message);
  });
});

test('a deploy whose server sends the leaf without its intermediate ends failed at verify with the verdict', async (t) => {
  const dir = await tempDir(t);
  const pki = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
  const port = await serve(t, leafOnly(pki));
  const rec = recorder();
  const res = await deployLocally(
    requestFor(
      pki.bundle,
      subscriptionOf({
        outputs: [
          { path: join(dir, 'fullchain.pem'), format: 'fullchain' },
          { path: join(dir, 'key.pem'), format: 'key' },
        ],
        reload: 'true',
        verify: { host: '127.0.0.1', port, sni: NAMES[0] },
      }),
    ),
    rec.report,
    { stateDir: await tempDir(t), verifyTimeoutMs: 1000 },
  );
  assert.equal(res.state, 'failed');
  assert.equal(res.reason, 'verify');
  assert.deepEqual(rec.states(), ['installed', 'reloaded', 'failed']);
  assert.equal(res.detail?.chainFailure, 'missing_intermediate');
  assert.equal(res.detail?.servedFingerprint, fingerprintOf(pki.bundle.certPem));
  assert.match(String(res.detail?.message), /missing intermediate/);
});
