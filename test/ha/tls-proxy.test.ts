/**
 * The hub behind a TLS-terminating HAProxy (docs/ha.md, "TLS at the load balancer"): a real `certfleet hub --no-tls
 * --trusted-proxy 127.0.0.1` and a real HAProxy (test/helpers/haproxy.ts: `option forwardfor`, X-Forwarded-Proto)
 * in front of it. The proxy's certificate comes from the hub's own CA (agents pin that CA at enrollment and accept
 * only HTTPS): the first one from `certfleet hub proxy-cert`, the next ones from an agent on the proxy's host.
 * Real agents (`certfleet agent run`) enroll and live through the proxy only.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { HubClient } from '../../src/cli/client.ts';
import { eventually } from '../helpers/agent.ts';
import { startCliAgent } from '../helpers/cli-agent.ts';
import { runCli, startHubProcess } from '../helpers/cli.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startHaproxy } from '../helpers/haproxy.ts';
import { rawRequest, type RawAnswer } from '../helpers/raw-request.ts';
import { tempDir } from '../helpers/tmp.ts';

type Answer = RawAnswer;

/** One request, with no connection kept (https: trusting `caPem` only). */
function send(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: unknown; caPem?: string } = {},
): Promise<Answer> {
  return rawRequest(url, {
    ...(opts.method ? { method: opts.method } : {}),
    ...(opts.headers ? { headers: opts.headers } : {}),
    ...(opts.body !== undefined ? { json: opts.body } : {}),
    ...(opts.caPem ? { ca: opts.caPem } : {}),
  });
}

const leafFingerprint = (pem: string) =>
  new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();

interface SubscriptionView {
  deployment: { versionId: string; state: string } | null;
}

describe('hub behind a TLS-terminating HAProxy (--no-tls)', { timeout: 180_000 }, () => {
  test('an agent enrolled through the proxy receives a renewal; /metrics through the proxy needs a token; the dashboard signs in', async (t) => {
    const dir = await tempDir(t, 'certfleet-proxy-');
    const hubConfig = join(dir, 'hub.yaml');
    await writeFile(hubConfig, 'api:\n  authFailures: { max: 3, windowSeconds: 600 }\n');
    const hub = await startHubProcess(
      t,
      {},
      { args: ['--no-tls', '--trusted-proxy', '127.0.0.1', '--hub-config', hubConfig] },
    );
    assert.match(hub.url, /^http:\/\//);

    // The proxy's first certificate, from the hub CA, made on the hub's host (data directory and master key).
    const frontPem = join(dir, 'front.pem');
    const made = await runCli([
      'hub',
      'proxy-cert',
      '--data-dir',
      hub.dataDir,
      '--out',
      frontPem,
      '--name',
      '127.0.0.1',
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /Wrote .*front\.pem \(0600\): certificate for 127\.0\.0\.1 from the hub CA/);
    assert.equal((await stat(frontPem)).mode & 0o777, 0o600);
    const proxy = await startHaproxy((fn) => onCleanup(t, fn), {
      pemPath: frontPem,
      backends: [new URL(hub.url).host],
    });
    const front = proxy.urls[0];
    const caPem = await readFile(join(hub.dataDir, 'ca.pem'), 'utf8');
    const firstFront = leafFingerprint(await readFile(frontPem, 'utf8'));

    // Everything below goes through the proxy, trusting only the hub CA: the CLI's client, enrollment, the agent.
    const api = new HubClient({ hub: front, token: hub.token, caPem });
    await api.post('/api/v1/certificates', { name: 'www', sans: ['www.proxy.test'], lifetimeDays: 30 });
    const web = await startCliAgent(t, { url: front, token: hub.token, dataDir: hub.dataDir }, 'web1');
    const saved = JSON.parse(await readFile(join(web.stateDir, 'agent.json'), 'utf8')) as { hub: string };
    assert.equal(saved.hub, front);
    const out = join(dir, 'www-fullchain.pem');
    const sub = await api.post<{ id: string }>('/api/v1/subscriptions', {
      endpoint: 'web1',
      certificate: 'www',
      outputs: [{ path: out, format: 'fullchain', mode: '0644' }],
    });
    const withAgentOutput = (e: Error) => {
      throw new Error(`${e.message}\nagent:\n${web.output()}\nhaproxy:\n${proxy.output()}`);
    };
    const delivered = (versionId: string) =>
      eventually(
        async () => {
          const d = (await api.get<SubscriptionView>(`/api/v1/subscriptions/${sub.id}`)).deployment;
          return d?.versionId === versionId && ['installed', 'reloaded', 'verified'].includes(d.state);
        },
        60_000,
        `version ${versionId} installed`,
      ).catch(withAgentOutput);
    const v1 = await api.get<{ current: { id: string; fingerprint: string } }>('/api/v1/certificates/www');
    await delivered(v1.current.id);
    // The renewal wakes the agent's long-poll held through the proxy.
    const v2 = await api.post<{ id: string; fingerprint: string }>('/api/v1/certificates/www/renew', {});
    await delivered(v2.id);
    assert.equal(leafFingerprint(await readFile(out, 'utf8')), v2.fingerprint);
    assert.doesNotMatch(web.output(), /long-poll failed|signature|UNAUTHENTICATED/);

    // From now on the proxy's certificate is a managed one: an agent on the proxy's host, enrolled through the
    // proxy, keeps it in HAProxy's format (with a reload command in production: `systemctl reload haproxy`).
    await api.post('/api/v1/certificates', { name: 'front', sans: ['127.0.0.1'], lifetimeDays: 30 });
    const lb = await startCliAgent(t, { url: front, token: hub.token, dataDir: hub.dataDir }, 'lb');
    await api.post('/api/v1/subscriptions', {
      endpoint: 'lb',
      certificate: 'front',
      outputs: [{ path: frontPem, format: 'combined', mode: '0600' }],
    });
    const managed = await api.get<{ current: { fingerprint: string } }>('/api/v1/certificates/front');
    await eventually(
      async () => leafFingerprint(await readFile(frontPem, 'utf8')) === managed.current.fingerprint,
      60_000,
      'the managed proxy certificate written',
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nlb agent:\n${lb.output()}`);
    });
    assert.notEqual(managed.current.fingerprint, firstFront);

    // /metrics: anonymous only for a loopback peer that came through no proxy. Every peer of the hub is loopback
    // here; what HAProxy forwards carries X-Forwarded-For and needs a token.
    assert.equal((await send(`${front}/metrics`, { caPem })).status, 401);
    const withToken = await send(`${front}/metrics`, {
      caPem,
      headers: { authorization: `Bearer ${hub.token}` },
    });
    assert.equal(withToken.status, 200);
    assert.match(withToken.body, /^certfleet_/m);
    assert.equal((await send(`${hub.url}/metrics`)).status, 200, 'the direct loopback peer');

    // The dashboard through the proxy: the browser's Origin is https://<proxy>; the hub believes the proxy's
    // X-Forwarded-Proto, so sign-in is same-origin and its cookie Secure.
    const signIn = await send(`${front}/ui/session`, {
      method: 'POST',
      caPem,
      headers: { origin: front },
      body: { token: hub.token },
    });
    assert.equal(signIn.status, 200, signIn.body);
    assert.match(String(signIn.headers['set-cookie']), /; Secure/);

    // Failed logins count per client, not per proxy: one client locked out, another one through the same proxy
    // still gets in. (The clients here are on loopback, a trusted address, so the X-Forwarded-For they send stands
    // for them; a remote client's own header is left of the address HAProxy appends, and is not believed.)
    const from = (client: string, token: string) =>
      send(`${front}/api/v1/certificates`, {
        caPem,
        headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': client },
      });
    for (let i = 0; i < 3; i++) assert.equal((await from('203.0.113.7', 'cfa_wrong')).status, 401);
    assert.equal((await from('203.0.113.7', 'cfa_wrong')).status, 429);
    assert.equal((await from('203.0.113.8', hub.token)).status, 200);
  });
});
