/**
 * `certfleet doctor CERT` explains deployments per endpoint: deployments made to really fail by the real agent
 * process (a config test that fails → rolled_back; a reload that exits 3 → failed; a shut change window →
 * waiting_window), then the doctor binary names the step, exit code, stderr tail and the fix, and exits 1 when a
 * deployment failed (0 when it only waits). `status` shows the reason beside the state, and the deployment events
 * are found under the certificate's subject.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { FleetRow } from '../../src/store/store.ts';
import { diagnoseDeployment } from '../../src/doctor/deployment-checks.ts';
import { eventually } from '../helpers/agent.ts';
import { cliEnv, startCliAgent } from '../helpers/cli-agent.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('doctor explains deployments', () => {
  test('rolled back, failed and waiting deployments, each with step, exit code, stderr and fix', async (t) => {
    const hub = await startTestHub(t);
    const env = cliEnv(hub);
    const dir = await tempDir(t);
    for (const name of ['web', 'api', 'intranet']) {
      await mkdir(join(dir, name));
      const r = await runCli(['cert', 'add', name, '--san', `${name}.example.test`], env);
      assert.equal(r.code, 0, r.stderr);
    }
    // web's files exist from before (the server runs on them): a failed config test puts them back.
    await writeFile(join(dir, 'web', 'fullchain.pem'), 'old chain\n');
    await writeFile(join(dir, 'web', 'key.pem'), 'old key\n', { mode: 0o600 });
    await startCliAgent(t, hub, 'web1');

    const outputs = (name: string) => [
      '--output',
      `fullchain:${join(dir, name, 'fullchain.pem')}`,
      '--output',
      `key:${join(dir, name, 'key.pem')}`,
    ];
    const subscribe = async (args: string[]) => {
      const r = await runCli(['subscribe', 'web1', ...args], env);
      assert.equal(r.code, 0, r.stderr);
    };
    await subscribe([
      'web',
      ...outputs('web'),
      '--config-test',
      `sh -c 'echo "nginx: [emerg] cannot load certificate key" >&2; echo "nginx: configuration file test failed" >&2; exit 1'`,
      '--reload',
      'true',
    ]);
    await subscribe([
      'api',
      ...outputs('api'),
      '--reload',
      `sh -c 'echo "Failed to reload api.service: Unit api.service is masked." >&2; exit 3'`,
    ]);
    // A window that opens on the 1st of January only: shut now (unless the test runs in that minute).
    await subscribe([
      'intranet',
      ...outputs('intranet'),
      '--reload',
      'true',
      '--window',
      '0 0 1 1 *',
      '--window-duration',
      '1m',
    ]);

    const settled = new Set(['rolled_back', 'failed', 'waiting_window', 'reloaded', 'verified']);
    const rows = await eventually(
      async () => {
        const list = JSON.parse((await runCli(['--json', 'subscription', 'list'], env)).stdout);
        return list.every((s: any) => settled.has(s.deployment?.state)) && list;
      },
      120_000,
      'the three deployments to settle',
    );
    const stateOf = (cert: string) => rows.find((s: any) => s.certificate === cert).deployment.state;
    assert.equal(stateOf('web'), 'rolled_back');
    assert.equal(stateOf('api'), 'failed');

    const web = await runCli(['doctor', 'web'], env);
    assert.equal(web.code, 1, web.stdout + web.stderr);
    assert.match(
      web.stdout,
      /\[FAIL\] deployment to web1: version \w+ on web1 was rolled back: the previous files are back in place, at the config test: config test command exited with code 1/,
    );
    assert.match(
      web.stdout,
      /fix: the service refused the new files: run `sh -c .*` on web1, fix what it reports .*then `certfleet deploy web --endpoint web1`/,
    );
    assert.match(web.stdout, /step: config_test/);
    assert.match(web.stdout, /exitCode: 1/);
    assert.match(
      web.stdout,
      /stderr: nginx: \[emerg\] cannot load certificate key\n\s+nginx: configuration file test failed/,
    );
    assert.match(web.stdout, /1 problem\(s\) found/);

    const api = await runCli(['--json', 'doctor', 'api'], env);
    assert.equal(api.code, 1);
    const [apiDiag] = JSON.parse(api.stdout).certificates[0].diagnoses.filter((d: any) =>
      d.check.startsWith('deployment'),
    );
    assert.equal(apiDiag.status, 'fail');
    assert.match(
      apiDiag.message,
      /failed on its first install \(the new files were kept: a reload had used them\), at the reload: reload command exited with code 3/,
    );
    assert.equal(apiDiag.evidence.step, 'reload');
    assert.equal(apiDiag.evidence.exitCode, 3);
    assert.equal(apiDiag.evidence.stderr, 'Failed to reload api.service: Unit api.service is masked.');
    assert.match(
      apiDiag.fix,
      /^run `sh -c .*` on web1 and fix what it reports, then `certfleet deploy api --endpoint web1`$/,
    );

    if (stateOf('intranet') === 'waiting_window') {
      const intranet = await runCli(['doctor', 'intranet'], env);
      assert.equal(intranet.code, 0, 'waiting for a window is not a problem');
      assert.match(
        intranet.stdout,
        /\[WARN\] deployment to web1: installed on web1; the reload waits for the change window \(opens \d{4}-01-01T00:00:00\.000Z\)/,
      );
      assert.match(intranet.stdout, /fix: nothing to do: .*--now`/);
      assert.match(intranet.stdout, /no problems found/);
    }

    // status: the reason beside the state.
    const status = await runCli(['status'], env);
    assert.match(
      status.stdout,
      /web\s+web1\s+rolled_back \(config_test exited 1: nginx: configuration file test failed\)/,
    );
    assert.match(
      status.stdout,
      /api\s+web1\s+failed \(reload exited 3: Failed to reload api\.service: Unit api\.service is masked\.\)/,
    );

    // The deployment's events are found under the certificate's subject.
    const events = JSON.parse(
      (await runCli(['--json', 'events', '--subject', 'certificate:web', '--kind', 'deployment.'], env))
        .stdout,
    );
    const rolledBack = events.find((e: any) => e.kind === 'deployment.rolled_back');
    assert.ok(rolledBack, JSON.stringify(events.map((e: any) => e.kind)));
    assert.equal(rolledBack.data.endpoint, 'web1');
    assert.equal(rolledBack.actor, 'agent:web1');
  });
});

describe('doctor: a diverged deployment (pure)', () => {
  const fp = (c: string) => c.repeat(64);
  const row = {
    certificate: { name: 'web' },
    endpoint: { name: 'web1', kind: 'agent' },
    subscription: { outputs: [{ path: '/etc/ssl/web.pem', format: 'fullchain' }] },
    current: { fingerprint: fp('a'), serial: '0123456789abcdef01' },
    lastSeenAt: '2026-11-30T00:00:00Z',
    deployment: {
      state: 'diverged',
      reason: '127.0.0.1:443/web.test serves certificate bbbb… instead of version 0123…',
      detail: { target: '127.0.0.1:443/web.test', served: fp('b'), expected: fp('a') },
      updatedAt: '2026-11-30T00:00:00Z',
    },
    probes: [
      {
        targetKey: '127.0.0.1:443/web.test',
        source: 'agent:web1',
        at: '2026-11-30T00:01:00Z',
        ok: true,
        fingerprint: fp('b'),
      },
    ],
  } as unknown as FleetRow;

  test('says what is served instead, where it was seen, and that the server config must name the outputs', () => {
    const d = diagnoseDeployment(row);
    assert.equal(d.status, 'fail');
    assert.match(d.message, /serves certificate bbbb/);
    assert.match(d.fix, /names the output files \(\/etc\/ssl\/web\.pem\)/);
    assert.equal(
      d.evidence?.served,
      `127.0.0.1:443/web.test from agent:web1: ${fp('b').slice(0, 16)} (NOT the current version) at 2026-11-30T00:01:00Z`,
    );
  });

  test('a verified deployment is fine', () => {
    const ok = diagnoseDeployment({
      ...row,
      deployment: { ...row.deployment!, state: 'verified', detail: {} },
    });
    assert.equal(ok.status, 'ok');
  });
});
