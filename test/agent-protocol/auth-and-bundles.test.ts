import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { openSealedKey } from '../../src/protocol/sealed-key.ts';
import { signRequest } from '../../src/protocol/request-signature.ts';
import { certMatchesKey } from '../../src/pki/inspect.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { createCertificate, enrollTestAgent, subscribe } from '../helpers/agent.ts';

async function fleet(t: Parameters<typeof startTestHub>[0]) {
  const hub = await startTestHub(t);
  await createCertificate(hub, 'web');
  await createCertificate(hub, 'mail');
  const web1 = await enrollTestAgent(t, hub, 'web1');
  const mail1 = await enrollTestAgent(t, hub, 'mail1');
  await subscribe(hub, 'web1', 'web');
  await subscribe(hub, 'mail1', 'mail');
  return { hub, web1, mail1 };
}

const currentVersionId = async (hub: TestHub, cert: string) =>
  (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate(cert))!.id))!.id;

describe('agent request authentication', () => {
  test('tampered body, path, signature, stale timestamp and replayed nonce → 401', async (t) => {
    const { hub, web1 } = await fleet(t);
    const key = web1.identity.keys.signing;
    const id = web1.identity.endpointId;
    const versionId = await currentVersionId(hub, 'web');
    const subId = (await hub.ctx.store.listSubscriptions({ endpointId: id }))[0].id;
    const body = Buffer.from(
      JSON.stringify({ subscriptionId: subId, versionId, state: 'installed', at: new Date().toISOString() }),
    );
    const send = (url: string, headers: Record<string, string>, payload?: Buffer) =>
      hub.app.inject({
        method: payload ? 'POST' : 'GET',
        url,
        headers: { ...headers, ...(payload ? { 'content-type': 'application/json' } : {}) },
        ...(payload ? { payload } : {}),
      });

    // A correctly signed report is accepted (the baseline, so the 401s below are about the tampering).
    const good = signRequest(key, id, 'POST', '/api/v1/agent/report', body);
    assert.equal((await send('/api/v1/agent/report', good, body)).statusCode, 200);
    // The same request again: replayed nonce.
    const replay = await send('/api/v1/agent/report', good, body);
    assert.equal(replay.statusCode, 401);
    assert.match(replay.json().message, /replayed/);

    const tamperedBody = Buffer.from(body.toString().replace('installed', 'verified'));
    const h1 = signRequest(key, id, 'POST', '/api/v1/agent/report', body);
    assert.equal((await send('/api/v1/agent/report', h1, tamperedBody)).statusCode, 401);

    const h2 = signRequest(key, id, 'GET', '/api/v1/agent/desired?since=0&wait=0', undefined);
    const tamperedPath = await send('/api/v1/agent/desired?since=-1&wait=0', h2);
    assert.equal(tamperedPath.statusCode, 401);
    assert.match(tamperedPath.json().message, /invalid agent request signature/);

    const h3 = signRequest(key, id, 'GET', '/api/v1/agent/desired?wait=0', undefined);
    h3['x-certfleet-signature'] = Buffer.from(h3['x-certfleet-signature'], 'base64')
      .reverse()
      .toString('base64');
    assert.equal((await send('/api/v1/agent/desired?wait=0', h3)).statusCode, 401);

    const stale = signRequest(
      key,
      id,
      'GET',
      '/api/v1/agent/desired?wait=0',
      undefined,
      Date.now() - 6 * 60_000,
    );
    const staleRes = await send('/api/v1/agent/desired?wait=0', stale);
    assert.equal(staleRes.statusCode, 401);
    assert.match(staleRes.json().message, /5 minute window/);

    // Another agent's key claiming web1's identity.
    const h4 = signRequest(
      createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', ...ed25519Jwk() }, format: 'jwk' }),
      id,
      'GET',
      '/api/v1/agent/desired?wait=0',
      undefined,
    );
    assert.equal((await send('/api/v1/agent/desired?wait=0', h4)).statusCode, 401);

    const fresh = signRequest(key, id, 'GET', '/api/v1/agent/desired?wait=0', undefined);
    assert.equal((await send('/api/v1/agent/desired?wait=0', fresh)).statusCode, 200);
  });

  test("an agent cannot read another endpoint's certificate (403) nor report on its subscription", async (t) => {
    const { hub, web1, mail1 } = await fleet(t);
    const mailVersion = await currentVersionId(hub, 'mail');
    await assert.rejects(
      web1.client.bundle(mailVersion),
      (e: Error & { code?: string }) => e.code === 'FORBIDDEN',
    );
    const mailSub = (await hub.ctx.store.listSubscriptions({ endpointId: mail1.identity.endpointId }))[0].id;
    await assert.rejects(
      web1.client.report([
        { subscriptionId: mailSub, versionId: mailVersion, state: 'verified', at: new Date().toISOString() },
      ]),
      (e: Error & { code?: string }) => e.code === 'FORBIDDEN',
    );
    // Its own certificate works.
    const own = await mail1.client.bundle(mailVersion);
    assert.equal(own.certificateName, 'mail');
    // The desired state lists only its own subscriptions.
    const desired = await web1.client.desired(-1, 0);
    assert.deepEqual(
      desired.subscriptions.map((s) => s.certificateName),
      ['web'],
    );
  });
});

describe('sealed bundles', () => {
  test('the captured response holds no key material and opens only with the right agent key, endpoint and version', async (t) => {
    const { hub, web1, mail1 } = await fleet(t);
    const versionId = await currentVersionId(hub, 'web');
    const res = await hub.app.inject({
      method: 'GET',
      url: `/api/v1/agent/bundle/${versionId}`,
      headers: signRequest(
        web1.identity.keys.signing,
        web1.identity.endpointId,
        'GET',
        `/api/v1/agent/bundle/${versionId}`,
        undefined,
      ),
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cache-control'], 'no-store');
    const captured = res.body;
    const keyPem = await hub.certificates.privateKeyOf(
      (await hub.ctx.store.getCertificate('web'))!,
      (await hub.ctx.store.getVersion(versionId))!,
    );
    // No PEM private key, no base64 body of it, in the response.
    assert.doesNotMatch(captured, /PRIVATE KEY/);
    const keyBody = keyPem.replace(/-----[^-]+-----|\s/g, '');
    assert.ok(!captured.includes(keyBody.slice(20, 60)), 'no fragment of the key DER');
    const bundle = JSON.parse(captured);
    assert.equal(bundle.sealedKey.alg, 'x25519-hkdf-sha256-aes256gcm');

    const opened = openSealedKey(
      bundle.sealedKey,
      web1.identity.keys.sealing,
      web1.identity.endpointId,
      versionId,
    );
    assert.equal(opened, keyPem);
    assert.ok(certMatchesKey(bundle.certPem, opened));

    // Another agent's key, or a different endpoint/version binding, cannot open it.
    assert.throws(
      () => openSealedKey(bundle.sealedKey, mail1.identity.keys.sealing, web1.identity.endpointId, versionId),
      /cannot open the sealed private key/,
    );
    assert.throws(
      () => openSealedKey(bundle.sealedKey, web1.identity.keys.sealing, mail1.identity.endpointId, versionId),
      /cannot open/,
    );
    const other = await hub.renewal.renewNow('web', 'test');
    assert.throws(
      () => openSealedKey(bundle.sealedKey, web1.identity.keys.sealing, web1.identity.endpointId, other.id),
      /cannot open/,
    );
    // Flipping one ciphertext byte is detected.
    const ct = Buffer.from(bundle.sealedKey.ct, 'base64url');
    ct[5] ^= 1;
    assert.throws(
      () =>
        openSealedKey(
          { ...bundle.sealedKey, ct: ct.toString('base64url') },
          web1.identity.keys.sealing,
          web1.identity.endpointId,
          versionId,
        ),
      /cannot open/,
    );
    assert.ok(!hub.logs.join('').includes(keyBody.slice(20, 60)), 'hub logs hold no key');
  });
});

function ed25519Jwk(): { d: string; x: string } {
  const { d, x } = createPrivateKey(
    '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHH7hJ4JfUK1o6DlbHJ0XmhRb2q2t0Z3yQ2dAvmkqC+d\n-----END PRIVATE KEY-----\n',
  ).export({ format: 'jwk' }) as { d: string; x: string };
  return { d, x };
}
