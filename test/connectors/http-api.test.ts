/**
 * The http connector against a stand-in load-balancer API (test/helpers/standin-lb-api.ts: HTTPS with its own CA,
 * bearer token, PEM and PFX upload, activate): a real hub pushes renewals through the same deploy pipeline agents
 * use, and the stand-in serves what was activated on a TLS port, so the hub's probe proves it served.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Deployment } from '../../src/core/types.ts';
import { checkStore } from '../../src/hub/store-check.ts';
import { createCertificate, eventually } from '../helpers/agent.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { makeLocalhostTls } from '../helpers/localhost-tls.ts';
import { startStandinLbApi, type StandinLbApi } from '../helpers/standin-lb-api.ts';
import { startSilentServer } from '../helpers/tls-servers.ts';
import { tempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);
const HUB_CONFIG = { connectors: { verifyTimeoutSeconds: 10 } };
const TOKEN = 'tok-3f9a7c1e5b2d4f60a8e1';
const PFX_PASSWORD = 'pfx-pass-7d41c0';

/** Upload PEM (JSON) and PFX (base64 in JSON), then activate: the shape of many load-balancer APIs. */
function standinConnector(api: Pick<StandinLbApi, 'url' | 'caPem'>, extra: Record<string, unknown> = {}) {
  const auth = { authorization: 'Bearer {{secret:api_token}}' };
  return {
    kind: 'http',
    baseUrl: api.url,
    caPem: api.caPem,
    secrets: { api_token: TOKEN, pfx_password: PFX_PASSWORD },
    upload: [
      {
        name: 'upload pem',
        method: 'PUT',
        url: '/api/v1/certificates/{{name}}',
        headers: auth,
        json: { certificate: '{{cert_pem}}', chain: '{{chain_pem}}', key: '{{key_pem}}' },
        expect: { status: [200], json: { path: 'status', equals: 'ok' } },
      },
      {
        name: 'upload pfx',
        url: '/api/v1/certificates/{{name}}/pfx',
        headers: auth,
        json: { pfx: '{{pfx_base64}}', password: '{{secret:pfx_password}}' },
      },
    ],
    activate: [
      {
        name: 'activate',
        url: '/api/v1/activate',
        headers: auth,
        json: { certificate: '{{name}}' },
        expect: { status: ['2xx'], bodyContains: 'active' },
      },
    ],
    ...extra,
  };
}

async function addHttpEndpoint(hub: TestHub, name: string, connector: object, probePort?: number) {
  await hub.client.post('/api/v1/endpoints', {
    name,
    kind: 'connector',
    probeTargets: probePort ? [{ host: '127.0.0.1', port: probePort, sni: 'web.test' }] : [],
  });
  return hub.client.put<Record<string, unknown>>(`/api/v1/endpoints/${name}/connector`, connector);
}

/** The PFX password on the hub (the pkcs12 output's passwordRef), written once before any deploy reads it. */
async function pfxPasswordFile(dir: string): Promise<string> {
  const file = join(dir, 'pfx-password');
  await writeFile(file, PFX_PASSWORD, { mode: 0o600 });
  return file;
}

async function subscribeStandin(hub: TestHub, endpoint: string, passwordFile: string, servePort: number) {
  const sub = await hub.client.post<{ id: string }>('/api/v1/subscriptions', {
    endpoint,
    certificate: 'web',
    // For an http endpoint the paths only name the rendered objects; the formats feed the placeholders.
    outputs: [
      { path: '/lb/web.crt', format: 'cert' },
      { path: '/lb/web.chain', format: 'chain' },
      { path: '/lb/web.key', format: 'key' },
      { path: '/lb/web.pfx', format: 'pkcs12', passwordRef: `file:${passwordFile}` },
    ],
    verify: { host: '127.0.0.1', port: servePort, sni: 'web.test' },
  });
  return sub.id;
}

const settled = (hub: TestHub, subId: string, versionId: string, what: string): Promise<Deployment> =>
  eventually<Deployment | undefined>(
    async () => {
      const d = await hub.ctx.store.getDeployment(subId, versionId);
      return d && ['verified', 'failed', 'rolled_back'].includes(d.state) ? d : undefined;
    },
    60_000,
    what,
  ) as Promise<Deployment>;

async function publicKeyOf(
  args: string[],
  dir: string,
  file: string,
  data: string | Buffer,
): Promise<string> {
  await writeFile(join(dir, file), data, { mode: 0o600 });
  return (await run('openssl', [...args, '-in', join(dir, file)])).stdout;
}

describe('http connector + stand-in load-balancer API', () => {
  test('stand-in load-balancer API: a renewal is uploaded as PEM and PFX and activated, the probe sees it served → verified; a failed activate re-uploads the previous bundle', async (t) => {
    const dir = await tempDir(t);
    const pw = await pfxPasswordFile(dir);
    const api = await startStandinLbApi(await tempDir(t), TOKEN);
    onCleanup(t, () => api.close());
    const hub = await startTestHub(t, { config: HUB_CONFIG });
    const view = await addHttpEndpoint(hub, 'lb1', standinConnector(api), api.servePort);
    assert.deepEqual(view.secrets, ['api_token', 'pfx_password'], 'the API names the secrets set');
    assert.ok(!JSON.stringify(view).includes(TOKEN), 'and never returns their values');
    await createCertificate(hub, 'web', ['web.test']);
    const subId = await subscribeStandin(hub, 'lb1', pw, api.servePort);
    const certId = (await hub.ctx.store.getCertificate('web'))!.id;
    const v1 = (await hub.ctx.store.currentVersion(certId))!;
    const d1 = await settled(hub, subId, v1.id, 'v1 deployed');
    assert.equal(d1.state, 'verified', JSON.stringify(d1));

    const v2 = await hub.renewal.renewNow('web', 'test');
    const d2 = await settled(hub, subId, v2.id, 'v2 deployed');
    assert.equal(d2.state, 'verified', JSON.stringify(d2));
    // The API got this version as PEM: the leaf, its chain, and a key that belongs to the leaf (openssl says so).
    const pem = api.uploads.filter((u) => u.kind === 'pem').at(-1)!;
    assert.equal(pem.name, 'web');
    assert.equal(pem.certificate, v2.certPem);
    assert.equal(pem.chain, v2.chainPem);
    assert.equal(
      await publicKeyOf(['pkey', '-pubout'], dir, 'got.key', pem.key!),
      await publicKeyOf(['x509', '-pubkey', '-noout'], dir, 'got.crt', pem.certificate!),
    );
    // ... and as PKCS#12 that opens with the password and holds the same leaf.
    const pfx = api.uploads.filter((u) => u.kind === 'pfx').at(-1)!;
    assert.equal(pfx.password, PFX_PASSWORD);
    await writeFile(join(dir, 'got.pfx'), pfx.pfx!);
    const fromPfx = await run('openssl', [
      'pkcs12',
      '-in',
      join(dir, 'got.pfx'),
      '-passin',
      `pass:${PFX_PASSWORD}`,
      '-nokeys',
      '-clcerts',
    ]);
    assert.match(fromPfx.stdout, /BEGIN CERTIFICATE/);
    const pfxLeaf = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(fromPfx.stdout)![0];
    assert.equal(pfxLeaf.replace(/\s/g, ''), v2.certPem.replace(/\s/g, ''));
    // The stand-in serves what was activated, and the hub's own probe sees it.
    const probed = await hub.verification.probes.probeEndpoint('lb1');
    assert.equal(probed.results[0].fingerprint, v2.fingerprint);
    const kinds = (await hub.ctx.store.listEvents({ limit: 1000 }))
      .filter((e) => e.actor === 'connector:lb1')
      .map((e) => e.kind);
    for (const k of [
      'deployment.delivered',
      'deployment.installed',
      'deployment.reloaded',
      'deployment.verified',
    ])
      assert.ok(kinds.includes(k), `${k} recorded`);

    // The API fails to activate v3: the previous bundle (v2) is uploaded again and activated → rolled_back.
    api.failActivate(1);
    const v3 = await hub.renewal.renewNow('web', 'test');
    const d3 = await settled(hub, subId, v3.id, 'v3 attempted');
    assert.equal(d3.state, 'rolled_back', JSON.stringify(d3));
    assert.equal(d3.reason, 'reload');
    assert.match(String(d3.detail?.stderrTail), /request "activate".*answered HTTP 500/);
    const pems = api.uploads.filter((u) => u.kind === 'pem').map((u) => u.certificate);
    assert.deepEqual(pems.slice(-2), [v3.certPem, v2.certPem], 'v3 uploaded, then v2 again');
    assert.equal(
      (await hub.verification.probes.probeEndpoint('lb1')).results[0].fingerprint,
      v2.fingerprint,
      'v2 still served',
    );

    // No secret and no private key in events, the hub log or the store in clear; check-store opens what is sealed.
    const everything = JSON.stringify(await hub.ctx.store.listEvents({ limit: 1000 })) + hub.logs.join('');
    for (const secret of [TOKEN, PFX_PASSWORD, 'PRIVATE KEY'])
      assert.ok(!everything.includes(secret), `${secret} not in events or logs`);
    const meta = await hub.ctx.store.listMeta();
    assert.ok(
      !meta.some((m) => m.value.includes(TOKEN) || m.value.includes('PRIVATE KEY')),
      'sealed at rest',
    );
    const report = await checkStore(hub.ctx.store, hub.ctx.sealer);
    assert.deepEqual(
      report.rows
        .filter((r) => r.key.startsWith('connector.'))
        .map((r) => [r.ok, r.detail])
        .sort(),
      [
        [true, '1 deploy record(s) unseal'],
        [true, 'http connector: 2 secret(s) unseal'],
      ],
    );
  });

  test('a 401 from the API fails with a clear reason and no secret in events; a CA that did not issue the API certificate is a clear error', async (t) => {
    const dir = await tempDir(t);
    const pw = await pfxPasswordFile(dir);
    const api = await startStandinLbApi(await tempDir(t), TOKEN);
    onCleanup(t, () => api.close());
    const otherCa = await makeLocalhostTls(await tempDir(t));
    const hub = await startTestHub(t, { config: HUB_CONFIG });
    const wrongToken = 'wrong-token-5e8d2b9f41';
    const badToken = standinConnector(api);
    await addHttpEndpoint(hub, 'badtoken', {
      ...badToken,
      secrets: { ...badToken.secrets, api_token: wrongToken },
    });
    await addHttpEndpoint(hub, 'badca', standinConnector({ url: api.url, caPem: otherCa.caPem }));
    await createCertificate(hub, 'web', ['web.test']);
    const tokenSub = await subscribeStandin(hub, 'badtoken', pw, api.servePort);
    const caSub = await subscribeStandin(hub, 'badca', pw, api.servePort);
    const v1 = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!;

    const refused = await settled(hub, tokenSub, v1.id, 'badtoken attempted');
    assert.equal(refused.state, 'failed');
    assert.equal(refused.reason, 'write');
    assert.equal(refused.detail?.code, 'REMOTE_API_REFUSED');
    assert.match(
      String(refused.detail?.message),
      /request "upload pem" \(PUT \/api\/v1\/certificates\/\{\{name\}\}\).*HTTP 401/,
    );
    assert.match(String(refused.detail?.message), /invalid token/, 'the API answer is shown ...');
    assert.match(String(refused.detail?.hint), /credentials/);
    const everything = JSON.stringify(await hub.ctx.store.listEvents({ limit: 1000 })) + hub.logs.join('');
    assert.ok(!everything.includes(wrongToken), '... without the token it echoed');
    assert.ok(!everything.includes(PFX_PASSWORD));

    const untrusted = await settled(hub, caSub, v1.id, 'badca attempted');
    assert.equal(untrusted.state, 'failed');
    assert.equal(untrusted.detail?.code, 'REMOTE_TLS_UNTRUSTED');
    assert.match(
      String(untrusted.detail?.message),
      /certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted/,
    );
    assert.match(String(untrusted.detail?.hint), /caPem/);
    assert.equal(api.uploads.length, 0, 'nothing reached the API');
  });

  test('a hung API (accepts TCP, never answers) fails its own endpoint after its request timeout; another endpoint deploys meanwhile', async (t) => {
    const dir = await tempDir(t);
    const pw = await pfxPasswordFile(dir);
    const hung = await startSilentServer();
    onCleanup(t, () => hung.close());
    const api = await startStandinLbApi(await tempDir(t), TOKEN);
    onCleanup(t, () => api.close());
    const hub = await startTestHub(t, { config: HUB_CONFIG });
    const hungApi = { url: `https://127.0.0.1:${hung.port}`, caPem: api.caPem };
    // One hung API times out quickly; another one waits far longer than the healthy deploy can take.
    await addHttpEndpoint(hub, 'dead', standinConnector(hungApi, { timeoutSeconds: 2 }));
    await addHttpEndpoint(hub, 'stuck', standinConnector(hungApi, { timeoutSeconds: 600 }));
    await addHttpEndpoint(hub, 'lb1', standinConnector(api));
    await createCertificate(hub, 'web', ['web.test']);
    const deadSub = await subscribeStandin(hub, 'dead', pw, api.servePort);
    const stuckSub = await subscribeStandin(hub, 'stuck', pw, api.servePort);
    const liveSub = await subscribeStandin(hub, 'lb1', pw, api.servePort);
    const v1 = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!;
    const live = await settled(hub, liveSub, v1.id, 'lb1 deployed');
    assert.equal(live.state, 'verified', JSON.stringify(live));
    const stuck = await hub.ctx.store.getDeployment(stuckSub, v1.id);
    assert.ok(
      !['verified', 'failed', 'rolled_back'].includes(stuck?.state ?? 'pending'),
      `lb1 was verified while the hung API still held its request open (${JSON.stringify(stuck)})`,
    );
    const dead = await settled(hub, deadSub, v1.id, 'dead timed out');
    assert.equal(dead.state, 'failed', JSON.stringify(dead));
    assert.equal(dead.detail?.code, 'UNREACHABLE', JSON.stringify(dead));
    assert.match(String(dead.detail?.message), /request "upload pem".*got no complete answer within 2000 ms/);
  });

  test('settings are checked when given: an unknown placeholder and a secret without a value are named', async (t) => {
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/endpoints', { name: 'lb1', kind: 'connector' });
    const base = standinConnector({ url: 'https://lb.example.net', caPem: undefined as unknown as string });
    const put = (body: object) => hub.client.put('/api/v1/endpoints/lb1/connector', body);
    await assert.rejects(
      put({ ...base, upload: [{ ...base.upload[0], json: { certificate: '{{cert}}' } }] }),
      /unknown placeholder "\{\{cert\}\}"/,
    );
    await assert.rejects(
      put({ ...base, secrets: { api_token: TOKEN } }),
      /\{\{secret:pfx_password\}\}.*no value/,
    );
    await assert.rejects(put({ ...base, baseUrl: 'http://lb.example.net' }), /https/);
  });
});
