/**
 * `certfleet deploy <certificate> [--endpoint NAME] [--now]`: a real hub, an enrolled AgentRunner with the real
 * deployer, and a reload command that appends a line per reload, so reloads can be counted.
 * - `--now` reloads a `waiting_window` deployment outside its change window, once per request, with
 *   `window_overridden: true` in the report and a `deployment.window_override_requested` event (actor: the admin).
 * - Without `--now`, a version that failed (here on its first install: nothing to roll back to) is deployed again
 *   once its cause is fixed.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentRunner } from '../../src/agent/run-agent.ts';
import type { DesiredState } from '../../src/protocol/wire.ts';
import { createLogger } from '../../src/core/log.ts';
import type { AuditEvent } from '../../src/core/types.ts';
import type { RedeployResponse } from '../../src/hub/api/redeploy-routes.ts';
import { createCertificate, enrollTestAgent, eventually } from '../helpers/agent.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';

const quiet = createLogger({ level: 'silent' });

/** A 60-minute window on a weekday three days away: shut now, whatever the time of day. */
const shutWindow = () => ({
  cron: `0 3 * * ${(new Date().getUTCDay() + 3) % 7}`,
  durationMinutes: 60,
  timezone: 'UTC',
});

const cliEnv = (hub: TestHub) => ({
  CERTFLEET_HUB: hub.url,
  CERTFLEET_TOKEN: hub.token,
  CERTFLEET_CA_FILE: join(hub.dataDir, 'ca.pem'),
});

/** Hub + certificate `web` + agent `web1` subscribed with `spec`, running the real deployer. */
async function setup(t: TestContext, spec: Record<string, unknown>) {
  const hub = await startTestHub(t);
  const dir = await tempDir(t, 'certfleet-redeploy-');
  const reloadLog = join(dir, 'reloads.log');
  await writeFile(reloadLog, '');
  await createCertificate(hub, 'web');
  const web1 = await enrollTestAgent(t, hub, 'web1');
  const sub = await hub.client.post<{ id: string }>('/api/v1/subscriptions', {
    endpoint: 'web1',
    certificate: 'web',
    outputs: [
      { path: join(dir, 'fullchain.pem'), format: 'fullchain' },
      { path: join(dir, 'key.pem'), format: 'key' },
    ],
    reload: `echo "$CERTFLEET_VERSION_ID" >> '${reloadLog}'`,
    ...spec,
  });
  const runner = new AgentRunner({ stateDir: web1.stateDir, logger: quiet });
  await runner.start();
  onCleanup(t, () => runner.stop());
  const certId = (await hub.ctx.store.getCertificate('web'))!.id;
  return {
    hub,
    dir,
    web1,
    runner,
    subId: sub.id,
    current: async () => (await hub.ctx.store.currentVersion(certId))!,
    deployment: async (versionId: string) => hub.ctx.store.getDeployment(sub.id, versionId),
    reloads: async () => (await readFile(reloadLog, 'utf8')).split('\n').filter(Boolean),
  };
}

/**
 * Bumps the desired-state revision of the agent's endpoint without touching `web` (its probe targets are set
 * again; a change elsewhere would not even wake it), and waits until the agent has reconciled it.
 */
async function unrelatedChange(hub: TestHub, runner: AgentRunner): Promise<void> {
  const states: DesiredState[] = [];
  runner.on('state', (s: DesiredState) => states.push(s));
  await hub.ctx.store.updateEndpoint('web1', { probeTargets: [] }, 'test');
  const revision = await hub.ctx.store.revision();
  await eventually(() => states.some((s) => s.revision >= revision), 10_000, 'agent saw the new revision');
  await runner.idle();
}

describe('certfleet deploy', () => {
  test('--now reloads outside the change window once per request, reported and audited', async (t) => {
    const { hub, runner, current, deployment, reloads } = await setup(t, { window: shutWindow() });
    const v1 = await current();
    await eventually(async () => (await deployment(v1.id))?.state === 'waiting_window', 15_000, 'v1 waits');
    const v2 = await hub.renewal.renewNow('web', 'test');
    await eventually(async () => (await deployment(v2.id))?.state === 'waiting_window', 15_000, 'v2 waits');
    const waiting = (await deployment(v2.id))!;
    assert.ok(waiting.detail?.nextWindowAt, 'waiting_window names the next window');
    assert.deepEqual(await reloads(), [], 'no reload while the window is shut');

    const cli = await runCli(['deploy', 'web', '--now'], cliEnv(hub));
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /web1\s+waiting_window\s+deploy now, outside the change window/);

    await eventually(async () => (await deployment(v2.id))?.state === 'reloaded', 15_000, 'v2 reloaded');
    const done = (await deployment(v2.id))!;
    assert.equal(done.detail?.window_overridden, true, JSON.stringify(done.detail));
    assert.deepEqual(await reloads(), [v2.id], 'exactly one reload, of the current version');

    const events = await runCli(
      ['events', '--kind', 'deployment.window_override_requested', '--json'],
      cliEnv(hub),
    );
    assert.equal(events.code, 0, events.stderr);
    const overrides = JSON.parse(events.stdout) as AuditEvent[];
    assert.equal(overrides.length, 1);
    assert.match(overrides[0].actor, /^admin:/);
    assert.equal(overrides[0].subject, 'certificate:web');
    assert.equal(overrides[0].data.deployment_id, done.id);
    assert.equal(overrides[0].data.endpoint, 'web1');
    assert.equal(overrides[0].data.version_id, v2.id);
    assert.equal(overrides[0].data.override_window, true);
    assert.equal(overrides[0].data.from, 'waiting_window');

    // The request is acted on once: a later desired state that still carries it reloads nothing.
    await unrelatedChange(hub, runner);
    assert.deepEqual(await reloads(), [v2.id]);
    assert.equal((await deployment(v2.id))?.state, 'reloaded');

    // A new request for the live version runs the reload again (--endpoint, --json).
    const again = await runCli(['deploy', 'web', '--endpoint', 'web1', '--now', '--json'], cliEnv(hub));
    assert.equal(again.code, 0, again.stderr);
    const res = JSON.parse(again.stdout) as RedeployResponse;
    assert.equal(res.version.id, v2.id);
    assert.equal(res.overrideWindow, true);
    assert.deepEqual(
      res.requests.map((r) => [r.endpoint, r.previousState]),
      [['web1', 'reloaded']],
    );
    await eventually(async () => (await reloads()).length === 2, 15_000, 'second reload');
    assert.deepEqual(await reloads(), [v2.id, v2.id]);
  });

  test('without --now: a failed version is deployed again once fixed; requests die with their version', async (t) => {
    const marker = join(await tempDir(t, 'certfleet-marker-'), 'config-ok');
    const { hub, web1, runner, current, deployment, reloads } = await setup(t, {
      configTest: `test -f '${marker}'`,
    });
    const v1 = await current();
    await eventually(
      async () => (await deployment(v1.id))?.state === 'failed',
      15_000,
      'v1 failed (first install: nothing to roll back to)',
    );
    assert.equal((await deployment(v1.id))?.reason, 'config_test');
    // The agent does not retry a failed version on its own.
    await unrelatedChange(hub, runner);
    assert.equal((await deployment(v1.id))?.state, 'failed');
    assert.deepEqual(await reloads(), []);

    await writeFile(marker, 'fixed\n');
    const res = await hub.client.post<RedeployResponse>('/api/v1/certificates/web/deploy', {});
    assert.equal(res.overrideWindow, false);
    assert.deepEqual(
      res.requests.map((r) => [r.endpoint, r.previousState]),
      [['web1', 'failed']],
    );
    await eventually(async () => (await deployment(v1.id))?.state === 'reloaded', 15_000, 'v1 redeployed');
    assert.equal((await deployment(v1.id))?.detail?.window_overridden, undefined);
    assert.deepEqual(await reloads(), [v1.id]);
    const requested = await hub.ctx.store.listEvents({ kind: 'deployment.redeploy_requested' });
    assert.equal(requested.length, 1);
    assert.equal(requested[0].data.override_window, false);

    // The desired state carries the request for its version only: a renewal voids it.
    const before = await web1.client.desired(-1, 0);
    assert.equal(before.subscriptions[0].redeploy?.token, res.requests[0].token);
    assert.equal(before.subscriptions[0].redeploy?.overrideWindow, false);
    const v2 = await hub.renewal.renewNow('web', 'test');
    const after = await web1.client.desired(-1, 0);
    assert.equal(after.subscriptions[0].version?.id, v2.id);
    assert.equal(after.subscriptions[0].redeploy, undefined);
    await eventually(async () => (await deployment(v2.id))?.state === 'reloaded', 15_000, 'v2 reloaded');
    assert.deepEqual(await reloads(), [v1.id, v2.id]);
  });

  test('unknown certificate or endpoint, or an endpoint not subscribed: 404 with a hint', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    await hub.client.post('/api/v1/endpoints', { name: 'web2', kind: 'agent' });
    const post = (name: string, body: Record<string, unknown>) =>
      hub.app.inject({
        method: 'POST',
        url: `/api/v1/certificates/${name}/deploy`,
        headers: { authorization: `Bearer ${hub.token}` },
        payload: body,
      });

    const unknown = await post('nope', { overrideWindow: true });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().code, 'CERTIFICATE_NOT_FOUND');
    assert.match(unknown.json().hint, /certfleet cert list/);

    const notSubscribed = await post('web', { endpoint: 'web2' });
    assert.equal(notSubscribed.statusCode, 404);
    assert.match(notSubscribed.json().message, /endpoint "web2" does not subscribe to certificate "web"/);
    assert.match(notSubscribed.json().hint, /certfleet subscribe web2 web/);

    const noEndpoint = await post('web', { endpoint: 'ghost' });
    assert.equal(noEndpoint.statusCode, 404);
    assert.equal(noEndpoint.json().code, 'ENDPOINT_NOT_FOUND');

    const nobody = await post('web', {});
    assert.equal(nobody.statusCode, 404);
    assert.match(nobody.json().message, /no endpoint subscribes to certificate "web"/);
    assert.equal((await hub.ctx.store.listEvents({ kind: 'deployment.' })).length, 0, 'nothing recorded');

    const cli = await runCli(['deploy', 'nope', '--now'], cliEnv(hub));
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /error: certificate "nope" not found\nhint: list certificates/);
  });
});
