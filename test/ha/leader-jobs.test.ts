/**
 * Leader jobs (src/hub/leader-jobs.ts): of the hubs on one PostgreSQL database exactly one runs the planner,
 * probes, alerts, backups and connectors; when it stops, another takes them over. Every hub says what it is in
 * /healthz and in the `certfleet_leader` metric. A hub on SQLite is always the leader.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { HubClient } from '../../src/cli/client.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { sharedPostgres } from '../helpers/postgres.ts';

const postgres = sharedPostgres();

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function health(hub: TestHub): Promise<{ leader: boolean }> {
  const res = await hub.app.inject({ method: 'GET', url: '/healthz' });
  return res.json();
}

async function leaderMetric(hub: TestHub): Promise<string | undefined> {
  const text = await hub.verification.metrics.registry.metrics();
  return /^certfleet_leader (\d)$/m.exec(text)?.[1];
}

describe('leader jobs', () => {
  test('a hub on SQLite leads: /healthz and certfleet_leader say so', async (t) => {
    const hub = await startTestHub(t);
    assert.equal((await health(hub)).leader, true);
    assert.equal(await leaderMetric(hub), '1');
  });

  test('of two hubs on one database one leads; when it stops, the other takes the jobs over', async (t) => {
    const url = await postgres.database();
    const env = { CERTFLEET_MASTER_KEY: randomBytes(32).toString('hex') };
    const config = { planner: { enabled: true, intervalSeconds: 3600 } };
    const first = await startTestHub(t, { databaseUrl: url, env, config, logLevel: 'info' });
    const second = await startTestHub(t, { databaseUrl: url, env, config, logLevel: 'info' });

    assert.equal(first.leadership.isLeader, true, 'the first hub took the free lease');
    assert.equal(second.leadership.isLeader, false);
    assert.deepEqual(
      [(await health(first)).leader, (await health(second)).leader, await leaderMetric(second)],
      [true, false, '0'],
    );
    assert.match(first.logs.join(''), /this hub now leads/);
    assert.match(second.logs.join(''), /another hub leads; this hub serves the API/);
    // the follower serves the API all the same
    const client = new HubClient({ hub: second.url, token: first.token, caPem: second.caPem });
    assert.deepEqual(await client.get('/api/v1/certificates'), []);

    await first.close();
    await until('the second hub to lead', () => second.leadership.isLeader);
    assert.equal((await health(second)).leader, true);
    assert.equal(await leaderMetric(second), '1');
    assert.match(second.logs.join(''), /this hub now leads/);
  });
});
