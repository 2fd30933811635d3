/**
 * What the hub and agent processes write: log lines on stdout (JSON, or pretty with --log-format pretty), the
 * banner for people on stderr, and the bootstrap admin token in neither (it is in a 0600 file whose path is logged).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { prettyLine } from '../../src/core/pretty-log.ts';
import { CLI, runCli } from '../helpers/cli.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { tempDir } from '../helpers/tmp.ts';

/** The environment minus the log settings a test runner may carry, so each test states its own. */
function withoutLogSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { CERTFLEET_LOG_LEVEL: _level, CERTFLEET_LOG_FORMAT: _format, ...rest } = env;
  return rest;
}

/** Runs `certfleet hub` until its banner is out, then SIGTERM; returns both streams as written. */
async function runHubOnce(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}) {
  const dataDir = join(await tempDir(t), 'data');
  const child = spawn(
    process.execPath,
    [CLI, 'hub', '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...args],
    {
      env: { ...withoutLogSettings(process.env), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  onCleanup(t, async () => {
    if (child.exitCode === null && !child.signalCode) child.kill('SIGKILL');
    await exited;
  });
  while (!/Store the token/.test(stderr)) {
    if (child.exitCode !== null) throw new Error(`hub exited:\n${stdout}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  return { stdout, stderr, dataDir, token: (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim() };
}

describe('hub and agent output', () => {
  test('--log-format json: every stdout line is JSON, the banner is on stderr, the admin token is in neither', async (t) => {
    const { stdout, stderr, dataDir, token } = await runHubOnce(t, ['--log-format', 'json']);
    const lines = stdout.split('\n').filter(Boolean);
    assert.ok(lines.length >= 3, stdout);
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const msgs = entries.map((e) => e.msg);
    assert.ok(msgs.includes('hub listening'), stdout);
    assert.ok(msgs.includes('hub stopping'), stdout);
    const created = entries.find((e) => e.msg === 'admin token created, written to its file (0600)');
    assert.equal(created?.path, join(dataDir, 'admin-token'));
    assert.match(stderr, /^certfleet hub listening on https:\/\/127\.0\.0\.1:\d+\n/);
    assert.doesNotMatch(stdout, /listening on|Admin token/, 'no banner in the log stream');
    assert.match(token, /^cfa_[\w-]{43}$/);
    assert.equal((await stat(join(dataDir, 'admin-token'))).mode & 0o777, 0o600);
    assert.ok(!stdout.includes(token) && !stderr.includes(token), 'the admin token was written out');
  });

  test('--log-level warn drops info lines; pretty prints readable lines', async (t) => {
    const quiet = await runHubOnce(t, ['--log-format', 'json', '--log-level', 'warn']);
    assert.equal(quiet.stdout, '', 'nothing at info');
    const pretty = await runHubOnce(t, ['--log-format', 'pretty']);
    assert.match(
      pretty.stdout,
      /^\d\d:\d\d:\d\d\.\d{3} INFO  hub listening url=https:\/\/127\.0\.0\.1:\d+ data_dir=/m,
    );
    assert.ok(!pretty.stdout.includes(pretty.token));
  });

  test('the default follows stdout: not a terminal (a pipe, the journal) means JSON; env sets it too', async (t) => {
    const piped = await runHubOnce(t, []);
    for (const l of piped.stdout.split('\n').filter(Boolean)) JSON.parse(l);
    const viaEnv = await runHubOnce(t, [], { CERTFLEET_LOG_FORMAT: 'pretty' });
    assert.match(viaEnv.stdout, / INFO  hub listening /);
  });

  test('a bad --log-format or --log-level is a usage error (exit 2) naming the choices, for hub and agent', async () => {
    for (const args of [
      ['hub', '--log-format', 'xml'],
      ['hub', '--log-level', 'loud'],
      ['agent', 'run', '--log-format', 'xml'],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /Allowed choices are/);
    }
  });

  test('pretty lines: time, level, message, then key=value with errors as their message', () => {
    const line = JSON.stringify({
      level: 50,
      time: Date.parse('2030-01-02T03:04:05.678Z'),
      pid: 1,
      hostname: 'h',
      msg: 'reconcile failed',
      endpoint: 'web 1',
      attempt: 2,
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' },
    });
    assert.equal(
      prettyLine(line),
      '03:04:05.678 ERROR reconcile failed endpoint="web 1" attempt=2 err="Error: boom"',
    );
    assert.equal(prettyLine('not json'), 'not json');
  });
});
