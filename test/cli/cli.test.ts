import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { onCleanup } from '../helpers/cleanup.ts';
import { runCli, startHubProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('certfleet CLI against a running hub', () => {
  test('issues an internal-CA certificate end to end and prints it as PEM', async (t) => {
    const hub = await startHubProcess(t);
    const dir = await tempDir(t);
    const add = await runCli(
      ['cert', 'add', 'web', '--san', 'web.example.test', '--san', '127.0.0.1', '--key-type', 'ecdsa-p384'],
      hub.env,
    );
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /created certificate web/);

    const list = await runCli(['cert', 'list'], hub.env);
    assert.match(list.stdout, /^NAME\s+SANS\s+KEY/m);
    assert.match(list.stdout, /web\s+web\.example\.test,127\.0\.0\.1\s+ecdsa-p384\s+internal/);

    const json = JSON.parse((await runCli(['--json', 'cert', 'list'], hub.env)).stdout);
    assert.equal(json[0].name, 'web');

    const pem = await runCli(['cert', 'show', 'web', '--pem'], hub.env);
    assert.equal(pem.code, 0);
    await writeFile(join(dir, 'chain.pem'), pem.stdout);
    execFileSync('sh', [
      '-c',
      `awk 'BEGIN{n=0} /BEGIN CERT/{n++} {print > "${dir}/c" n ".pem"}' ${dir}/chain.pem`,
    ]);
    const verify = execFileSync('openssl', [
      'verify',
      '-CAfile',
      join(hub.dataDir, 'ca.pem'),
      '-untrusted',
      join(dir, 'c2.pem'),
      join(dir, 'c1.pem'),
    ]).toString();
    assert.match(verify, /OK/);

    const renew = await runCli(['cert', 'renew', 'web'], hub.env);
    assert.match(renew.stdout, /renewed web: serial [0-9A-F]+/);
    const events = await runCli(['events'], hub.env);
    assert.match(events.stdout, /certificate\.created\s+certificate:web/);
    assert.equal((events.stdout.match(/version\.issued/g) ?? []).length, 2);

    assert.match(
      (
        await runCli(
          ['endpoint', 'add', 'web1', '--agent', '--probe', '127.0.0.1:443/web.example.test'],
          hub.env,
        )
      ).stdout,
      /created agent endpoint web1/,
    );
    assert.match(
      (await runCli(['endpoint', 'list'], hub.env)).stdout,
      /web1\s+agent\s+127\.0\.0\.1:443\/web\.example\.test/,
    );
    const sub = await runCli(
      ['subscribe', 'web1', 'web', '--output', 'fullchain:/etc/ssl/web.pem', '--reload', 'nginx -s reload'],
      hub.env,
    );
    assert.equal(sub.code, 0, sub.stderr);
    assert.match((await runCli(['status'], hub.env)).stdout, /web\s+web1\s+pending/);
    // The filter named in alert messages (`certfleet status <certificate>`).
    assert.match((await runCli(['status', 'web'], hub.env)).stdout, /web\s+web1\s+pending/);
    assert.doesNotMatch((await runCli(['status', 'other'], hub.env)).stdout, /web1/);
    assert.equal((await runCli(['cert', 'rm', 'web'], hub.env)).code, 1);
    assert.equal((await runCli(['cert', 'rm', 'web', '--force'], hub.env)).code, 0);
  });

  test('exit codes: 0 ok, 1 failure with message and hint, 2 usage', async (t) => {
    const hub = await startHubProcess(t);
    const bad = await runCli(['cert', 'add', 'x', '--san', '*.bad_name'], hub.env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /error: .*"\*\.bad_name" is not a valid DNS name/);
    assert.match(bad.stderr, /hint: /);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');

    const usage = await runCli(['cert', 'add', 'x'], hub.env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /required option '--san <name>' not specified/);
    assert.equal((await runCli(['frobnicate'], hub.env)).code, 2);
    const notNumber = await runCli(
      ['cert', 'add', 'x', '--san', 'x.example', '--lifetime-days', 'soon'],
      hub.env,
    );
    assert.equal(notNumber.code, 2);
    assert.match(notNumber.stderr, /"soon" is not a whole number/);
    assert.equal((await runCli(['--help'], hub.env)).code, 0);

    const noToken = await runCli(['cert', 'list'], { ...hub.env, CERTFLEET_TOKEN: '' });
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /missing API token/);
    const wrong = await runCli(['cert', 'list', '--token', 'cfa_nope'], hub.env);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /invalid API token/);

    // --json: stdout is JSON whatever happens, so a script never parses a human sentence.
    const missing = await runCli(['--json', 'cert', 'show', 'nosuch'], hub.env);
    assert.equal(missing.code, 1);
    assert.equal(JSON.parse(missing.stdout).error.code, 'CERTIFICATE_NOT_FOUND');
    assert.match(JSON.parse(missing.stdout).error.hint, /\S/);
    const usageJson = await runCli(['--json', 'cert', 'add', 'x'], hub.env);
    assert.equal(usageJson.code, 2);
    assert.equal(JSON.parse(usageJson.stdout).error.code, 'USAGE');
    const downJson = await runCli(['cert', 'list', '--json'], {
      ...hub.env,
      CERTFLEET_HUB: 'https://127.0.0.1:1',
    });
    assert.equal(downJson.code, 1);
    assert.match(JSON.parse(downJson.stdout).error.message, /cannot connect to the hub/);

    const down = await runCli(['cert', 'list'], { ...hub.env, CERTFLEET_HUB: 'https://127.0.0.1:1' });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot connect to the hub/);
    const untrusted = await runCli(['cert', 'list'], {
      ...hub.env,
      CERTFLEET_CA_FILE: '',
      CERTFLEET_DATA_DIR: '/nonexistent',
    });
    assert.match(untrusted.stderr, /not trusted/);
  });

  test('the first start writes the admin token to a 0600 file and names it; a restart creates none', async (t) => {
    const hub = await startHubProcess(t);
    const file = join(hub.dataDir, 'admin-token');
    assert.match(
      hub.output(),
      new RegExp(`Admin token created \\(first start\\) and written to ${file} \\(0600\\)`),
    );
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.ok(!hub.output().includes(hub.token), 'the token is in no output');
    await hub.stop();
    const { spawn } = await import('node:child_process');
    const { CLI } = await import('../helpers/cli.ts');
    const again = spawn(
      process.execPath,
      [CLI, 'hub', '--data-dir', hub.dataDir, '--listen', '127.0.0.1:0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    onCleanup(t, () => again.kill('SIGKILL'));
    let out = '';
    again.stdout.on('data', (d) => (out += d));
    again.stderr.on('data', (d) => (out += d));
    while (!/hub CA: /.test(out)) {
      if (again.exitCode !== null) throw new Error(`hub exited:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.doesNotMatch(out, /Admin token/);
    // The old token still works against the restarted hub.
    const url = /listening on (\S+)/.exec(out)![1];
    assert.equal((await runCli(['cert', 'list'], { ...hub.env, CERTFLEET_HUB: url })).code, 0);
  });
});
