/**
 * Agents fail over between hubs: two real `certfleet hub` processes over one private PostgreSQL cluster (one data
 * directory: the same master key and hub CA), one one-file agent enrolled with both URLs. The hub it is connected
 * to is killed with SIGKILL; a renewal made through the survivor reaches the agent and nginx serves it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HubClient } from '../../src/cli/client.ts';
import { startHubProcess } from '../helpers/cli.ts';
import { startNginxOnPlaceholder, servedFingerprint } from '../helpers/nginx.ts';
import { sharedPostgres } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/tmp.ts';
import { eventually } from '../helpers/agent.ts';
import { buildAgentArtifact } from '../helpers/agent-artifact.ts';

const postgres = sharedPostgres();

interface SubscriptionView {
  id: string;
  deployment: { versionId: string; state: string } | null;
}

describe('agent with several hubs', () => {
  test('kill -9 the hub the agent is connected to: a renewal through the survivor reaches nginx', async (t) => {
    const url = await postgres.database();
    // planner off: renewals here are the test's, made through one hub at a time
    const dir = await tempDir(t, 'certfleet-ha-');
    const configFile = join(dir, 'hub.yaml');
    await writeFile(configFile, 'planner:\n  enabled: false\n');
    const args = ['--database-url', url, '--hub-config', configFile];
    const first = await startHubProcess(t, {}, { args });
    const second = await startHubProcess(t, {}, { dataDir: first.dataDir, args });
    const caPem = await readFile(join(first.dataDir, 'ca.pem'), 'utf8');
    const api = (hub: { url: string }) => new HubClient({ hub: hub.url, token: first.token, caPem });

    const live = join(dir, 'live');
    await mkdir(live);
    const nginx = await startNginxOnPlaceholder(t, live);
    const nginxCmd = nginx.command;

    await api(first).post('/api/v1/certificates', { name: 'web', sans: ['web.test'], lifetimeDays: 30 });
    await api(first).post('/api/v1/endpoints', { name: 'web1', kind: 'agent' });
    // the token is minted through one hub and redeemed through the other: one database
    const minted = await api(second).post<{ token: string; caFingerprint: string }>(
      '/api/v1/endpoints/web1/enroll-token',
      {},
    );
    const sub = await api(first).post<{ id: string }>('/api/v1/subscriptions', {
      endpoint: 'web1',
      certificate: 'web',
      outputs: [
        { path: join(live, 'fullchain.pem'), format: 'fullchain', mode: '0644' },
        { path: join(live, 'key.pem'), format: 'key', mode: '0600' },
      ],
      configTest: `${nginxCmd} -t`,
      reload: `${nginxCmd} -s reload`,
      verify: { host: '127.0.0.1', port: nginx.port, sni: 'web.test' },
    });

    const agent = await buildAgentArtifact(t);
    const { stateDir } = agent;
    const enrolled = await agent.enroll([first.url, second.url], minted);
    assert.match(enrolled.stdout, new RegExp(`with ${first.url}, ${second.url}`));
    const saved = JSON.parse(await readFile(join(stateDir, 'agent.json'), 'utf8'));
    assert.deepEqual(saved.hubs, [first.url, second.url]);

    const running = agent.start(['agent', 'run', '--state-dir', stateDir, '--long-poll', '5'], {
      CERTFLEET_LOG_LEVEL: 'info',
    });
    const withAgentOutput = (e: Error) => {
      throw new Error(`${e.message}\nagent output:\n${running.output()}`);
    };
    const deployment = async (hub: { url: string }) =>
      (await api(hub).get<SubscriptionView>(`/api/v1/subscriptions/${sub.id}`)).deployment;

    const v1 = await api(first).get<{ current: { id: string; fingerprint: string } }>(
      '/api/v1/certificates/web',
    );
    await eventually(
      async () => (await deployment(first))?.state === 'verified',
      30_000,
      'v1 verified',
    ).catch(withAgentOutput);
    assert.equal(await servedFingerprint(nginx.port, 'web.test'), v1.current.fingerprint);
    assert.match(running.output(), new RegExp(`"hub":"${first.url}","msg":"connected to hub"`));

    // The hub the agent holds its long-poll on dies without a word.
    first.process.kill('SIGKILL');
    await new Promise((r) => first.process.once('exit', r));
    const killed = performance.now();
    const renewed = await api(second).post<{ id: string; fingerprint: string }>(
      '/api/v1/certificates/web/renew',
      {},
    );
    await eventually(
      async () => {
        const d = await deployment(second);
        return d?.versionId === renewed.id && d.state === 'verified';
      },
      40_000,
      'the renewal verified through the surviving hub',
    ).catch(withAgentOutput);
    t.diagnostic(
      `kill -9 → renewal verified through the survivor in ${(performance.now() - killed).toFixed(0)} ms`,
    );
    assert.equal(await servedFingerprint(nginx.port, 'web.test'), renewed.fingerprint);
    assert.match(running.output(), new RegExp(`switching from hub ${first.url} to ${second.url}`));
    assert.match(running.output(), new RegExp(`"hub":"${second.url}","msg":"connected to hub"`));
  });
});
