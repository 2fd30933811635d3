/**
 * `certfleet emergency cancel ID`, through the real binary against a hub process whose planner is off (so the
 * campaign's certificates stay unissued while the test looks): cancelling withdraws the campaign's reissue
 * requests, records an event, and the campaign shows `cancelled`; a second cancel or an unknown id fails with a hint.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { runCli, startHubProcess, type CliResult } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const ok = (r: CliResult, what: string) => assert.equal(r.code, 0, `${what}: ${r.stderr}${r.stdout}`);

test('emergency cancel: the unissued certificates are no longer due, the campaign shows cancelled', async (t) => {
  const dir = await tempDir(t, 'certfleet-emergency-cancel-');
  const configPath = join(dir, 'hub.yaml');
  await writeFile(configPath, stringify({ planner: { enabled: false } }));
  const hub = await startHubProcess(t, { CERTFLEET_HUB_CONFIG: configPath });
  const env = hub.env;
  ok(await runCli(['cert', 'add', 'web', '--issuer', 'internal', '--san', 'web.test'], env), 'add web');
  ok(await runCli(['cert', 'add', 'api', '--issuer', 'internal', '--san', 'api.test'], env), 'add api');
  const requested = async () => {
    const plan = JSON.parse((await runCli(['plan', '--json'], env)).stdout) as {
      entries: Array<{ certificateName: string; decision: { reason: string } }>;
    };
    return plan.entries
      .filter((e) => e.decision.reason === 'ReissueRequested')
      .map((e) => e.certificateName)
      .sort();
  };

  const started = await runCli(['emergency', 'reissue', '--all', '--yes', '--detach'], env);
  ok(started, 'reissue --detach');
  const id = /campaign (\S+) started: 2 certificate\(s\)/.exec(started.stdout)![1];
  assert.deepEqual(await requested(), ['api', 'web'], 'the campaign made both due');

  const cancel = await runCli(['emergency', 'cancel', id], env);
  ok(cancel, 'cancel');
  assert.match(cancel.stdout, new RegExp(`^campaign ${id} cancelled: 2 certificate\\(s\\) not reissued\\n`));
  assert.match(cancel.stdout, /issued 0\/2 .* · cancelled\n$/);
  assert.deepEqual(await requested(), [], 'neither is due any more');

  const status = JSON.parse((await runCli(['emergency', 'status', id, '--json'], env)).stdout);
  assert.equal(status.campaign.state, 'cancelled');
  assert.equal(status.progress.issued, 0);
  const list = await runCli(['emergency', 'status'], env);
  ok(list, 'status');
  assert.match(list.stdout, new RegExp(`${id} .* cancelled `));
  const events = JSON.parse((await runCli(['events', '--json'], env)).stdout) as Array<{ kind: string }>;
  assert.equal(events.filter((e) => e.kind === 'emergency.campaign_cancelled').length, 1);

  const again = await runCli(['emergency', 'cancel', id], env);
  assert.equal(again.code, 1);
  assert.match(
    again.stderr,
    /is not running \(it is cancelled\)\nhint: only a running campaign can be cancelled/,
  );
  const unknown = await runCli(['emergency', 'cancel', 'no-such-campaign'], env);
  assert.equal(unknown.code, 1);
  assert.match(
    unknown.stderr,
    /no emergency campaign "no-such-campaign"\nhint: list them with `certfleet emergency status`/,
  );
});
