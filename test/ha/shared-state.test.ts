/**
 * State the hubs on one PostgreSQL database share (two real hubs, in this process): a signed agent request
 * replayed to the other hub is refused; an http-01 answer put by one hub is served by the other; a long-poll
 * waiting at one hub wakes when the other commits a new desired state.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { HubClient } from '../../src/cli/client.ts';
import { signRequest } from '../../src/protocol/request-signature.ts';
import { createCertificate, enrollTestAgent, subscribe } from '../helpers/agent.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { sharedPostgres } from '../helpers/postgres.ts';

const postgres = sharedPostgres();

/** Two hubs on one fresh database; the second's API client uses the first's admin token (one cluster, one token). */
async function cluster(t: TestContext): Promise<[TestHub, TestHub]> {
  const url = await postgres.database();
  const env = { CERTFLEET_MASTER_KEY: randomBytes(32).toString('hex') };
  const a = await startTestHub(t, { databaseUrl: url, env, config: { agent: { revisionPollMs: 60_000 } } });
  const b = await startTestHub(t, { databaseUrl: url, env, config: { agent: { revisionPollMs: 60_000 } } });
  b.client = new HubClient({ hub: b.url, token: a.token, caPem: b.caPem });
  b.token = a.token;
  return [a, b];
}

describe('state shared by the hubs of a cluster', () => {
  test('a signed agent request replayed to the other hub is refused', async (t) => {
    const [a, b] = await cluster(t);
    const agent = await enrollTestAgent(t, a, 'web1');
    const path = '/api/v1/agent/desired?since=0&wait=0';
    const signed = signRequest(
      agent.identity.keys.signing,
      agent.identity.endpointId,
      'GET',
      path,
      undefined,
    );
    const send = (hub: TestHub) => hub.app.inject({ method: 'GET', url: path, headers: signed });

    assert.equal((await send(a)).statusCode, 200);
    const replayed = await send(b);
    assert.equal(replayed.statusCode, 401);
    assert.match(replayed.json().message, /replayed agent request/);

    const fresh = signRequest(agent.identity.keys.signing, agent.identity.endpointId, 'GET', path, undefined);
    assert.equal(
      (await b.app.inject({ method: 'GET', url: path, headers: fresh })).statusCode,
      200,
      'the agent itself is welcome at the other hub',
    );
  });

  test('an http-01 answer put by one hub is served by the other', async (t) => {
    const [a, b] = await cluster(t);
    const token = randomBytes(16).toString('base64url');
    await a.acme!.http01Store.put(token, `${token}.thumbprint`);
    const served = await b.app.inject({ method: 'GET', url: `/.well-known/acme-challenge/${token}` });
    assert.equal(served.statusCode, 200);
    assert.equal(served.body, `${token}.thumbprint`);
    await a.acme!.http01Store.delete(token);
    const gone = await b.app.inject({ method: 'GET', url: `/.well-known/acme-challenge/${token}` });
    assert.equal(gone.statusCode, 404);
  });

  test("a long-poll waiting at one hub wakes when the other hub commits (not the hub's fallback poll)", async (t) => {
    const [a, b] = await cluster(t);
    const since = await b.ctx.store.revision();
    const woke = b.agentProtocol.notifier.wait(since, 30_000);
    await createCertificate(a, 'web');
    await a.client.post('/api/v1/endpoints', { name: 'web1', kind: 'agent' });
    await subscribe(a, 'web1', 'web', { outputs: [{ path: '/tmp/ha-web.pem', format: 'fullchain' }] });
    const revision = await woke;
    assert.ok(revision > since, `woke with revision ${revision} > ${since}`);
  });
});
