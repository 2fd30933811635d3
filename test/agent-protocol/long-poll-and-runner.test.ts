import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentRunner, type DeployFn } from '../../src/agent/run-agent.ts';
import { createLogger } from '../../src/core/log.ts';
import { startHub, type RunningHub } from '../../src/hub/hub.ts';
import { HubClient } from '../../src/cli/client.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { createCertificate, enrollTestAgent, eventually, subscribe } from '../helpers/agent.ts';

const quiet = createLogger({ level: 'silent' });

/** A deployer stand-in: reports installed → reloaded → verified at once and records what it was asked. */
function standInDeploy(calls: string[], gate?: (versionId: string) => Promise<void>): DeployFn {
  return async (req, report) => {
    calls.push(req.versionId);
    await report({ state: 'installed', at: new Date().toISOString() });
    await gate?.(req.versionId);
    await report({ state: 'reloaded', at: new Date().toISOString() });
    await report({
      state: 'verified',
      at: new Date().toISOString(),
      detail: { fingerprint: req.fingerprint },
    });
    return { state: 'verified' };
  };
}

const deploymentState = async (hub: { ctx: RunningHub['ctx'] }, subId: string, versionId: string) =>
  (await hub.ctx.store.getDeployment(subId, versionId))?.state;

const currentVersion = async (hub: { ctx: RunningHub['ctx'] }, cert: string) =>
  (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate(cert))!.id))!;

describe('desired state long-poll', () => {
  test('holds while nothing changes and wakes on a renewal', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    const web1 = await enrollTestAgent(t, hub, 'web1');
    await subscribe(hub, 'web1', 'web');
    const first = await web1.client.desired(-1, 0);
    assert.equal(first.subscriptions[0].certificateName, 'web');
    assert.deepEqual(first.subscriptions[0].sans, ['web.test']);
    const v1 = first.subscriptions[0].version!;
    assert.equal(v1.id, (await currentVersion(hub, 'web')).id);
    assert.ok((await hub.ctx.store.lastSeen(web1.identity.endpointId)) !== undefined, 'last_seen_at touched');

    // Nothing changes: the hub parks the request for the requested second, then answers with the same revision.
    const notifier = hub.agentProtocol.notifier;
    const holding = web1.client.desired(first.revision, 1);
    await eventually(() => notifier.waiting === 1, 10_000, 'the poll parked on the hub');
    const unchanged = await holding;
    assert.equal(unchanged.revision, first.revision);
    assert.equal(notifier.waiting, 0);

    for (let i = 0; i < 3; i++) {
      const since = (await web1.client.desired(-1, 0)).revision;
      const polled = performance.now();
      const poll = web1.client.desired(since, 25);
      await eventually(() => notifier.waiting === 1, 10_000, 'the poll parked on the hub');
      const started = performance.now();
      const v = await hub.renewal.renewNow('web', 'test');
      const committed = performance.now();
      const woke = await poll;
      const done = performance.now();
      assert.equal(woke.subscriptions[0].version!.id, v.id);
      // the only other way out is the end of its 25 s hold
      assert.ok(done - polled < 25_000, 'woken by the renewal');
      t.diagnostic(
        `renew took ${(committed - started).toFixed(1)} ms; long-poll answered ${(done - committed).toFixed(1)} ms after commit`,
      );
    }
  });

  test('a new version wakes only the agents subscribed to its certificate; a later poll of the others still holds', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    await createCertificate(hub, 'api');
    const web1 = await enrollTestAgent(t, hub, 'web1');
    const api1 = await enrollTestAgent(t, hub, 'api1');
    await subscribe(hub, 'web1', 'web');
    await subscribe(hub, 'api1', 'api');
    const notifier = hub.agentProtocol.notifier;
    const webSince = (await web1.client.desired(-1, 0)).revision;
    const apiFirst = await api1.client.desired(-1, 0);
    let apiAnswered = false;
    const apiPoll = api1.client.desired(apiFirst.revision, 25).finally(() => (apiAnswered = true));
    const webPoll = web1.client.desired(webSince, 25);
    await eventually(() => notifier.waiting === 2, 10_000, 'both polls parked on the hub');

    const v = await hub.renewal.renewNow('web', 'test');
    assert.equal(
      (await webPoll).subscriptions[0].version!.id,
      v.id,
      'the web agent woke with the new version',
    );
    assert.equal(notifier.waiting, 1, 'the api agent still waits: the renewal of web is nothing to it');
    assert.equal(apiAnswered, false);

    // Even asked afresh with its old revision (now behind the store's), it is parked: nothing new concerns it.
    const again = api1.client.desired(apiFirst.revision, 1);
    await eventually(() => notifier.waiting === 2, 10_000, 'the second api poll parked too');
    assert.equal((await again).subscriptions[0].version!.id, apiFirst.subscriptions[0].version!.id);

    const w = await hub.renewal.renewNow('api', 'test');
    assert.equal((await apiPoll).subscriptions[0].version!.id, w.id, 'its own renewal wakes it');
  });

  test('a subscription change also wakes the poll, and hub shutdown releases parked polls at once', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    await createCertificate(hub, 'api');
    const web1 = await enrollTestAgent(t, hub, 'web1');
    await subscribe(hub, 'web1', 'web');
    const since = (await web1.client.desired(-1, 0)).revision;
    const polled = performance.now();
    const poll = web1.client.desired(since, 25);
    await eventually(() => hub.agentProtocol.notifier.waiting === 1, 10_000, 'the poll parked on the hub');
    await subscribe(hub, 'web1', 'api');
    const woke = await poll;
    assert.deepEqual(woke.subscriptions.map((s) => s.certificateName).sort(), ['api', 'web']);
    assert.ok(performance.now() - polled < 25_000, 'woken by the change, not by the end of its 25 s hold');

    const parked = web1.client.desired(woke.revision, 25).catch((e) => e);
    await eventually(() => hub.agentProtocol.notifier.waiting === 1, 10_000, 'the poll parked on the hub');
    const closing = performance.now();
    await hub.close();
    await parked;
    assert.ok(performance.now() - closing < 25_000, 'hub close does not wait out the 25 s long-poll period');
  });
});

describe('agent run loop', () => {
  test('deploys each new version, reports reach the hub, `certfleet status` shows them', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    const web1 = await enrollTestAgent(t, hub, 'web1');
    const subId = await subscribe(hub, 'web1', 'web');
    const calls: string[] = [];
    const runner = new AgentRunner({ stateDir: web1.stateDir, deploy: standInDeploy(calls), logger: quiet });
    await runner.start();
    onCleanup(t, () => runner.stop());
    const v1 = await currentVersion(hub, 'web');
    await eventually(
      async () => (await deploymentState(hub, subId, v1.id)) === 'verified',
      10_000,
      'v1 verified',
    );
    const v2 = await hub.renewal.renewNow('web', 'test');
    await eventually(
      async () => (await deploymentState(hub, subId, v2.id)) === 'verified',
      10_000,
      'v2 verified',
    );
    assert.deepEqual(calls, [v1.id, v2.id]);

    // Every transition is an event with the agent as actor.
    const events = await hub.ctx.store.listEvents({ kind: 'deployment.' });
    const mine = events.filter((e) => e.data.version_id === v2.id).map((e) => `${e.actor} ${e.kind}`);
    assert.deepEqual(mine.slice(-4), [
      'agent:web1 deployment.delivered',
      'agent:web1 deployment.installed',
      'agent:web1 deployment.reloaded',
      'agent:web1 deployment.verified',
    ]);
    // The bundle is cached sealed (0600), never as a clear private key.
    const cached = await readFile(join(web1.stateDir, 'bundles', `${v2.id}.json`), 'utf8');
    assert.doesNotMatch(cached, /PRIVATE KEY/);

    const env = {
      CERTFLEET_HUB: hub.url,
      CERTFLEET_TOKEN: hub.token,
      CERTFLEET_CA_FILE: join(hub.dataDir, 'ca.pem'),
    };
    const status = await runCli(['status'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      new RegExp(`web\\s+web1\\s+verified\\s+\\S+ ago\\s+${v2.fingerprint.slice(0, 12)}`),
    );
    assert.match(status.stdout, /\sSEEN$/m);
    const json = JSON.parse((await runCli(['status', '--json'], env)).stdout);
    assert.equal(json[0].deployment.state, 'verified');
    assert.equal(json[0].version.fingerprint, v2.fingerprint);
    assert.ok(json[0].lastSeenAt);
  });

  test('restarts with the hub down, keeps its deployment, queues reports on disk, recovers when the hub returns', async (t) => {
    const dataDir = join(await tempDir(t), 'hub');
    const env = { CERTFLEET_ADMIN_TOKEN: 'cfa_test_restart_0123456789abcdef' };
    let hub: RunningHub | undefined = await startHub({ dataDir, listen: '127.0.0.1:0', logger: quiet, env });
    const port = hub.port;
    onCleanup(t, () => hub?.close());
    const testHub = {
      ...hub,
      dataDir,
      token: env.CERTFLEET_ADMIN_TOKEN,
      logs: [],
      client: new HubClient({ hub: hub.url, token: env.CERTFLEET_ADMIN_TOKEN, caPem: hub.caPem }),
    } as TestHub;
    await createCertificate(testHub, 'web');
    const web1 = await enrollTestAgent(t, testHub, 'web1');
    const subId = await subscribe(testHub, 'web1', 'web');
    const v1 = await currentVersion(hub, 'web');

    const calls: string[] = [];
    const first = new AgentRunner({ stateDir: web1.stateDir, deploy: standInDeploy(calls), logger: quiet });
    await first.start();
    await eventually(
      async () => (await deploymentState(hub!, subId, v1.id)) === 'verified',
      10_000,
      'v1 verified',
    );
    await first.stop();
    await hub.close();
    hub = undefined;

    // Agent restarts while the hub is down: starts from its local state, does not redeploy, keeps retrying.
    let hubForGate: RunningHub | undefined;
    const second = new AgentRunner({
      stateDir: web1.stateDir,
      logger: process.env.DEBUG_AGENT ? createLogger({ level: 'debug' }) : quiet,
      backoffMinMs: 100,
      backoffMaxMs: 400,
      deploy: standInDeploy(calls, async () => {
        // The hub goes away in the middle of the deploy: the remaining reports must wait on disk.
        await hubForGate?.close();
        hubForGate = undefined;
        hub = undefined;
      }),
    });
    const disconnected = new Promise((r) => second.once('disconnected', r));
    await second.start();
    onCleanup(t, () => second.stop());
    await disconnected;
    assert.deepEqual(calls, [v1.id], 'no redeploy from local state');

    hub = await startHub({ dataDir, listen: `127.0.0.1:${port}`, logger: quiet, env });
    hubForGate = hub;
    await eventually(() => second.connected, 10_000, 'agent reconnects');
    const v2 = await hub.renewal.renewNow('web', 'test');
    await eventually(
      () => calls.length === 2 && hub === undefined,
      10_000,
      'deploy of v2 ran and closed the hub',
    );
    await eventually(
      async () => (await readFile(join(web1.stateDir, 'reports.json'), 'utf8')).includes('"verified"'),
      5000,
      'verified report queued on disk',
    );

    hub = await startHub({ dataDir, listen: `127.0.0.1:${port}`, logger: quiet, env });
    await eventually(
      async () => (await deploymentState(hub!, subId, v2.id)) === 'verified',
      10_000,
      'queued reports flushed',
    );
    assert.deepEqual(calls, [v1.id, v2.id]);
    // The hub commits before its answer reaches the agent: the queue empties right after.
    await eventually(() => second.pendingReports === 0, 5000, 'report queue empty');
  });
});
