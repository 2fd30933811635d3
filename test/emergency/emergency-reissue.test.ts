/**
 * The bad day, end to end with real parts: a hub process (the compiled binary) with a Pebble issuer and the
 * internal CA, a real agent with nginx for one certificate. `certfleet emergency reissue --issuer pebble --yes`
 * reissues every Pebble certificate (and only those), nginx serves the new one, the campaign ends verified. A
 * second campaign survives kill -9 of the hub and completes after a restart. Bad input starts nothing.
 */
import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { pebbleCaFile, pebbleIssuer, randomName } from '../helpers/acme-hub.ts';
import { eventually } from '../helpers/agent.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startCliAgent } from '../helpers/cli-agent.ts';
import { runCli, startHubProcess, type CliResult } from '../helpers/cli.ts';
import { freePort, startNginxOnPlaceholder, servedFingerprint } from '../helpers/nginx.ts';
import { startPebble } from '../helpers/pebble.ts';
import { tempDir } from '../helpers/tmp.ts';

const ok = (r: CliResult, what: string) => assert.equal(r.code, 0, `${what}: ${r.stderr}${r.stdout}`);

test('emergency reissue by issuer: plan, confirm, reissue, nginx serves the new version; resumes after kill -9', async (t) => {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const dir = await tempDir(t, 'certfleet-emergency-');
  const configPath = join(dir, 'hub.yaml');
  await writeFile(
    configPath,
    stringify({
      issuers: [pebbleIssuer(pebble, await pebbleCaFile(t, pebble))],
      http01: { listen: `127.0.0.1:${pebble.httpPort}` },
      // The planner's own tick never comes during the test: a campaign kicks it, and a (re)start runs it once.
      planner: { intervalSeconds: 3600 },
    }),
  );
  // A fixed port, so the agent finds the hub again after the restart.
  const listen = ['--listen', `127.0.0.1:${await freePort()}`];
  const hubEnv = { CERTFLEET_HUB_CONFIG: configPath };
  let hub = await startHubProcess(t, hubEnv, { args: listen });
  const env = hub.env;

  const webName = randomName('web-');
  ok(await runCli(['cert', 'add', 'web', '--issuer', 'pebble', '--san', webName], env), 'add web');
  ok(await runCli(['cert', 'add', 'api', '--issuer', 'pebble', '--san', randomName('api-')], env), 'add api');
  ok(await runCli(['cert', 'add', 'intra', '--issuer', 'internal', '--san', 'intra.test'], env), 'add intra');

  // nginx for `web`, fed by a real agent.
  const live = join(dir, 'live');
  await mkdir(live);
  const nginx = await startNginxOnPlaceholder(t, live, { dnsName: webName });
  const nginxCmd = nginx.command;
  const agent = await startCliAgent(t, hub, 'web1');
  ok(
    await runCli(
      [
        'subscribe',
        'web1',
        'web',
        '--output',
        `fullchain:${join(live, 'fullchain.pem')}`,
        '--mode',
        '0644',
        '--output',
        `key:${join(live, 'key.pem')}`,
        '--mode',
        '0600',
        '--config-test',
        `${nginxCmd} -t`,
        '--reload',
        `${nginxCmd} -s reload`,
        '--verify',
        `127.0.0.1:${nginx.port}/${webName}`,
      ],
      env,
    ),
    'subscribe',
  );
  const show = async (name: string) =>
    JSON.parse((await runCli(['cert', 'show', name, '--json'], env)).stdout) as {
      current?: { serial: string; fingerprint: string };
    };
  const pemOf = async (name: string) => (await runCli(['cert', 'show', name, '--pem'], env)).stdout;
  await eventually(
    async () => (await servedFingerprint(nginx.port, webName)) === (await show('web')).current?.fingerprint,
    30_000,
    'nginx serves the first version of web',
  );
  const before = { web: await show('web'), api: await show('api'), intra: await show('intra') };
  const webKeyBefore = createPublicKey(await pemOf('web')).export({ format: 'der', type: 'spki' });

  await t.test('bad input: clear errors, nothing started', async () => {
    const two = await runCli(['emergency', 'reissue', '--issuer', 'pebble', '--all', '--yes'], env);
    assert.equal(two.code, 2);
    assert.match(two.stderr, /choose one selector\nhint: pass exactly one of --issuer NAME, --serials FILE/);
    const unknown = await runCli(['emergency', 'reissue', '--issuer', 'nosuch', '--yes'], env);
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      /issuer "nosuch" is not configured on this hub\nhint: use one of: internal, pebble/,
    );
    const missing = await runCli(
      ['emergency', 'reissue', '--serials', join(dir, 'no-such-file'), '--yes'],
      env,
    );
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read the serials file .*no-such-file: ENOENT/);
    const noTty = await runCli(['emergency', 'reissue', '--issuer', 'pebble'], env, '');
    assert.equal(noTty.code, 2);
    assert.match(
      noTty.stdout,
      /Emergency reissue: 2 certificate\(s\) selected \(issuer pebble\), 1 endpoint/,
    );
    assert.match(
      noTty.stderr,
      /not started: confirmation needed .*\nhint: read the plan, then run again with --yes/,
    );
    const status = await runCli(['emergency', 'status'], env);
    ok(status, 'status');
    assert.equal(status.stdout, 'No emergency campaigns.\n');
  });

  await t.test(
    'a serials file selects by current serial and reports the unknown ones; an intermediate selects its chain',
    async () => {
      const file = join(dir, 'serials.txt');
      const colons = before.api.current!.serial.match(/../g)!.join(':');
      await writeFile(file, `# CA incident list\n${colons}\nDEADBEEF\n`);
      const plan = await runCli(['emergency', 'reissue', '--serials', file], env, '');
      assert.equal(plan.code, 2, 'no --yes, no terminal: not started');
      assert.match(
        plan.stdout,
        /Emergency reissue: 1 certificate\(s\) selected \(serials\), 0 endpoint deployment/,
      );
      assert.match(plan.stdout, /Unknown serials \(no version has them\): DEADBEEF\n/);
      const [, intermediate] = (await pemOf('web')).split(/(?=-----BEGIN CERTIFICATE-----)/);
      const sha = new X509Certificate(intermediate).fingerprint256;
      const byChain = await runCli(['emergency', 'reissue', '--intermediate', sha], env, '');
      assert.equal(byChain.code, 2);
      assert.match(byChain.stdout, /2 certificate\(s\) selected \(intermediate [0-9a-f]{64}\)/);
      const json = await runCli(['emergency', 'status', '--json'], env);
      assert.deepEqual(JSON.parse(json.stdout), [], 'nothing started');
    },
  );

  let firstId = '';
  await t.test(
    'reissue --issuer pebble --yes: every Pebble certificate gets a new version, served and verified',
    async () => {
      const run = await runCli(
        ['emergency', 'reissue', '--issuer', 'pebble', '--yes', '--rekey', '--reason', 'CA incident 42'],
        env,
      );
      ok(run, 'emergency reissue');
      assert.match(run.stdout, /ISSUER\s+CERTIFICATES\s+ARI REPLACES\s+ORDER HEADROOM/);
      assert.match(run.stdout, /^pebble\s+2\s/m);
      firstId = /campaign (\S+) started: 2 certificate\(s\)/.exec(run.stdout)![1];
      assert.match(
        run.stdout,
        /issued 2\/2 · delivered 1\/1 · reloaded 1\/1 · verified 1\/1 · failed 0 · done\n$/,
      );

      const after = { web: await show('web'), api: await show('api'), intra: await show('intra') };
      assert.notEqual(after.web.current!.serial, before.web.current!.serial);
      assert.notEqual(after.api.current!.serial, before.api.current!.serial);
      assert.equal(after.intra.current!.serial, before.intra.current!.serial, 'another issuer is untouched');
      assert.equal(await servedFingerprint(nginx.port, webName), after.web.current!.fingerprint);
      const webKeyAfter = createPublicKey(await pemOf('web')).export({ format: 'der', type: 'spki' });
      assert.ok(!webKeyAfter.equals(webKeyBefore), 'the new version has a new key');

      const status = await runCli(['emergency', 'status', firstId], env);
      ok(status, 'status');
      assert.match(
        status.stdout,
        new RegExp(`campaign ${firstId} \\(done\\)\\n.*verified 1/1 · failed 0 · done`),
      );
      const report = await runCli(['emergency', 'report', firstId], env);
      ok(report, 'report');
      assert.match(report.stdout, /Every endpoint serves a new certificate/);
      const events = await runCli(['events', '--json'], env);
      assert.match(events.stdout, /emergency\.campaign_started/);
      assert.match(events.stdout, /emergency\.campaign_finished/);
    },
  );

  await t.test('a campaign survives kill -9 of the hub and completes after the restart', async () => {
    await agent.stop(); // the new version cannot be served meanwhile: the campaign cannot finish before the kill
    const webBefore = await show('web');
    const started = await runCli(['emergency', 'reissue', '--issuer', 'pebble', '--yes', '--detach'], env);
    ok(started, 'reissue --detach');
    const id = /campaign (\S+) started/.exec(started.stdout)![1];
    hub.process.kill('SIGKILL');
    await new Promise((r) => hub.process.once('exit', r));

    hub = await startHubProcess(t, hubEnv, { dataDir: hub.dataDir, args: listen });
    const running = JSON.parse((await runCli(['emergency', 'status', id, '--json'], env)).stdout);
    assert.equal(running.campaign.state, 'running', 'not finished: the new version of web is not served yet');
    agent.start();
    const watched = await runCli(['emergency', 'status', id, '--watch'], env);
    ok(watched, 'status --watch');
    assert.match(
      watched.stdout,
      /issued 2\/2 · delivered 1\/1 · reloaded 1\/1 · verified 1\/1 · failed 0 · done\n$/,
    );
    const webAfter = await show('web');
    assert.notEqual(webAfter.current!.serial, webBefore.current!.serial);
    assert.equal(await servedFingerprint(nginx.port, webName), webAfter.current!.fingerprint);
    const list = JSON.parse((await runCli(['emergency', 'status', '--json'], env)).stdout);
    assert.deepEqual(
      list.map((v: { campaign: { id: string; state: string } }) => [v.campaign.id, v.campaign.state]),
      [
        [id, 'done'],
        [firstId, 'done'],
      ],
    );
  });
});
