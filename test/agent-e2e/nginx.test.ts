/**
 * End to end with a real nginx and the agent endpoints get: the one-file `npm run build:agent` artifact, alone in
 * a directory without node_modules, run by plain `node`. It enrolls with the hub, then `agent run` takes each new
 * version → files in nginx's paths → `nginx -t` → `nginx -s reload` → nginx serves the new fingerprint and the
 * hub shows `verified`. A broken nginx config → `rolled_back`, nginx keeps serving the old certificate.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VERSION } from '../../src/cli/program.ts';
import { startTestHub } from '../helpers/hub.ts';
import { startNginxOnPlaceholder, servedFingerprint } from '../helpers/nginx.ts';
import { tempDir } from '../helpers/tmp.ts';
import { createCertificate, eventually, subscribe } from '../helpers/agent.ts';
import { buildAgentArtifact } from '../helpers/agent-artifact.ts';

describe('one-file agent + real nginx', () => {
  test('renew on the hub → nginx serves it and the hub shows verified; broken config → rolled_back, old cert kept', async (t) => {
    const hub = await startTestHub(t);
    const root = await tempDir(t, 'certfleet-e2e-');
    const live = join(root, 'live');
    await mkdir(live);
    const include = join(root, 'extra.conf');
    await writeFile(include, '');
    // nginx starts on a placeholder certificate, as a freshly installed server would.
    const nginx = await startNginxOnPlaceholder(t, live, { extraServers: [`  include ${include};`] });
    const nginxCmd = nginx.command;

    await createCertificate(hub, 'web', ['web.test']);
    const agent = await buildAgentArtifact(t);
    assert.equal((await agent.run(['--version'])).stdout.trim(), VERSION);
    await hub.client.post('/api/v1/endpoints', { name: 'web1', kind: 'agent' });
    const minted = await hub.client.post<{ token: string; caFingerprint: string }>(
      '/api/v1/endpoints/web1/enroll-token',
      {},
    );
    const { stateDir } = agent;
    const enrolled = await agent.enroll(hub.url, minted);
    assert.match(enrolled.stdout, /enrolled as endpoint web1/);
    const subId = await subscribe(hub, 'web1', 'web', {
      outputs: [
        { path: join(live, 'fullchain.pem'), format: 'fullchain', mode: '0644' },
        { path: join(live, 'key.pem'), format: 'key', mode: '0600' },
      ],
      configTest: `${nginxCmd} -t`,
      reload: `${nginxCmd} -s reload`,
      verify: { host: '127.0.0.1', port: nginx.port, sni: 'web.test' },
    });
    const running = agent.start(['agent', 'run', '--state-dir', stateDir, '--long-poll', '5'], {
      CERTFLEET_LOG_LEVEL: 'warn',
    });
    const state = async (versionId: string) => (await hub.ctx.store.getDeployment(subId, versionId))?.state;
    const certId = (await hub.ctx.store.getCertificate('web'))!.id;

    const v1 = (await hub.ctx.store.currentVersion(certId))!;
    const withAgentOutput = (e: Error) => {
      throw new Error(`${e.message}\nagent output:\n${running.output()}`);
    };
    await eventually(async () => (await state(v1.id)) === 'verified', 30_000, 'v1 verified').catch(
      withAgentOutput,
    );
    assert.equal(await servedFingerprint(nginx.port, 'web.test'), v1.fingerprint);

    const renewed = performance.now();
    const v2 = await hub.renewal.renewNow('web', 'test');
    await eventually(async () => (await state(v2.id)) === 'verified', 20_000, 'v2 verified');
    t.diagnostic(`renew → nginx serving and hub verified in ${(performance.now() - renewed).toFixed(0)} ms`);
    assert.equal(await servedFingerprint(nginx.port, 'web.test'), v2.fingerprint);

    // Someone breaks the nginx configuration: the next version must not take the server down.
    await writeFile(include, 'this is not nginx syntax;\n');
    const v3 = await hub.renewal.renewNow('web', 'test');
    await eventually(async () => (await state(v3.id)) === 'rolled_back', 20_000, 'v3 rolled back');
    assert.equal(await servedFingerprint(nginx.port, 'web.test'), v2.fingerprint);
    const d = (await hub.ctx.store.getDeployment(subId, v3.id))!;
    assert.ok(d.reason, 'rolled_back carries a reason');
    assert.match(JSON.stringify(d.detail), /config_test/);
  });
});
