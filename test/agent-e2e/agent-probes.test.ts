/**
 * Probes from the agent's side, end to end: the one-file agent against a real hub and nginx on a loopback port the
 * hub is told it cannot reach (`from: agent`). The hub never probes that target; the agent does, after each reload
 * and on the interval, and the hub judges on its reports: a renewal nginx serves is verified (source agent), a
 * reload that did not take effect is diverged. A report about a target the agent does not probe, and a replayed
 * report, are refused.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentClient } from '../../src/agent/agent-client.ts';
import { loadIdentity } from '../../src/agent/agent-identity.ts';
import { isCertfleetError } from '../../src/core/errors.ts';
import { signRequest } from '../../src/protocol/request-signature.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startTestHub } from '../helpers/hub.ts';
import { startNginxOnPlaceholder } from '../helpers/nginx.ts';
import { tempDir } from '../helpers/tmp.ts';
import { createCertificate, eventually, subscribe } from '../helpers/agent.ts';
import { buildAgentArtifact } from '../helpers/agent-artifact.ts';

/** POSTs exactly these bytes with exactly these headers (a captured request, sent again). */
function post(url: string, caPem: string, headers: Record<string, string>, body: Buffer) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca: caPem,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': String(body.length) },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('probes from the agent side', () => {
  test('a target only the agent reaches: renewal verified on the agent report, a stale reload diverged; foreign and replayed reports refused', async (t) => {
    const hub = await startTestHub(t, { config: { probes: { intervalSeconds: 5, graceSeconds: 3 } } });
    const root = await tempDir(t, 'certfleet-agent-probes-');
    const live = join(root, 'live');
    await mkdir(live);
    const nginx = await startNginxOnPlaceholder(t, live);
    const nginxCmd = nginx.command;
    const targetKey = `127.0.0.1:${nginx.port}/web.test`;

    await createCertificate(hub, 'web', ['web.test']);
    await hub.client.post('/api/v1/endpoints', {
      name: 'web1',
      kind: 'agent',
      probeTargets: [{ host: '127.0.0.1', port: nginx.port, sni: 'web.test', from: 'agent' }],
    });
    // another endpoint's target, probed by that endpoint's agent: web1's agent may not report it
    await hub.client.post('/api/v1/endpoints', {
      name: 'web2',
      kind: 'agent',
      probeTargets: [{ host: '127.0.0.1', port: 9, sni: 'other.test', from: 'agent' }],
    });
    const minted = await hub.client.post<{ token: string; caFingerprint: string }>(
      '/api/v1/endpoints/web1/enroll-token',
      {},
    );
    const agent = await buildAgentArtifact(t);
    const { stateDir } = agent;
    await agent.enroll(hub.url, minted);
    // No verify target: the agent's deploy ends at `reloaded`; only probes can verify.
    const subId = await subscribe(hub, 'web1', 'web', {
      outputs: [
        { path: join(live, 'fullchain.pem'), format: 'fullchain', mode: '0644' },
        { path: join(live, 'key.pem'), format: 'key', mode: '0600' },
      ],
      configTest: `${nginxCmd} -t`,
      reload: `${nginxCmd} -s reload`,
    });
    const running = agent.start(['agent', 'run', '--state-dir', stateDir, '--long-poll', '5'], {
      CERTFLEET_LOG_LEVEL: 'warn',
    });
    const withAgentOutput = async (e: Error) => {
      const seen = JSON.stringify(await hub.ctx.store.listProbeResults());
      const states = JSON.stringify((await hub.ctx.store.fleet()).items.map((r) => r.deployment));
      throw new Error(
        `${e.message}\nprobes: ${seen}\ndeployments: ${states}\nagent output:\n${running.output()}`,
      );
    };
    const deployment = (versionId: string) => hub.ctx.store.getDeployment(subId, versionId);
    const certId = (await hub.ctx.store.getCertificate('web'))!.id;

    const v1 = (await hub.ctx.store.currentVersion(certId))!;
    await eventually(
      async () => (await deployment(v1.id))?.state === 'verified',
      30_000,
      'v1 verified',
    ).catch(withAgentOutput);

    const v2 = await hub.renewal.renewNow('web', 'test');
    await eventually(
      async () => (await deployment(v2.id))?.state === 'verified',
      30_000,
      'v2 verified',
    ).catch(withAgentOutput);
    const verified = (await hub.ctx.store.listEvents({ limit: 1000 })).find(
      (e) => e.kind === 'deployment.verified' && e.data.version_id === v2.id,
    )!;
    assert.equal(verified.actor, 'probe');
    assert.deepEqual((verified.data.detail as { sources?: unknown }).sources, [`${targetKey} agent:web1`]);
    const results = (await hub.ctx.store.listProbeResults()).filter((r) => r.targetKey === targetKey);
    assert.deepEqual(
      results.map((r) => [r.source, r.fingerprint]),
      [['agent:web1', v2.fingerprint]],
      'only the agent probed the target the hub cannot reach',
    );
    const served =
      await hub.client.get<Array<{ subscriptionId: string; source: string; matchesCurrent: boolean }>>(
        '/api/v1/probes/served',
      );
    const row = served.find((s) => s.subscriptionId === subId)!;
    assert.equal(row.matchesCurrent, true);
    assert.ok(row.source === 'agent:web1' || row.source === 'hub', row.source);

    // The reload stops taking effect: nginx keeps serving v2 after v3 is "reloaded".
    await subscribe(hub, 'web1', 'web', {
      outputs: [
        { path: join(live, 'fullchain.pem'), format: 'fullchain', mode: '0644' },
        { path: join(live, 'key.pem'), format: 'key', mode: '0600' },
      ],
      configTest: `${nginxCmd} -t`,
      reload: 'true',
    });
    const v3 = await hub.renewal.renewNow('web', 'test');
    await eventually(
      async () => (await deployment(v3.id))?.state === 'diverged',
      30_000,
      'v3 diverged',
    ).catch(withAgentOutput);
    const d3 = (await deployment(v3.id))!;
    assert.equal(d3.detail?.source, 'agent:web1');
    assert.equal(d3.detail?.served, v2.fingerprint);
    assert.match(d3.reason ?? '', /seen from agent:web1/);

    // Reports the agent is not entitled to make: a target of no endpoint, another endpoint's target.
    const identity = await loadIdentity(stateDir);
    const client = new AgentClient(hub.url, identity.caPem, identity);
    onCleanup(t, () => client.close());
    const at = new Date().toISOString();
    for (const foreign of ['10.1.2.3:443/elsewhere.test', '127.0.0.1:9/other.test']) {
      const refused = await client
        .probeResults([{ targetKey: foreign, at, ok: false, errorKind: 'refused' }])
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(isCertfleetError(refused), `report for ${foreign} refused`);
      assert.equal(refused.code, 'FORBIDDEN');
      assert.match(refused.message, /is not one endpoint "web1" probes from its agent/);
    }

    // A captured (signed) report sent again is refused: the nonce was used.
    const path = '/api/v1/agent/probe-results';
    const body = Buffer.from(
      JSON.stringify({ results: [{ targetKey, at, ok: true, fingerprint: v2.fingerprint }] }),
    );
    const headers = signRequest(identity.keys.signing, identity.endpointId, 'POST', path, body);
    const first = await post(`${hub.url}${path}`, identity.caPem, headers, body);
    assert.equal(first.status, 200, first.body);
    const replayed = await post(`${hub.url}${path}`, identity.caPem, headers, body);
    assert.equal(replayed.status, 401);
    assert.match(replayed.body, /replayed agent request/);
  });
});
