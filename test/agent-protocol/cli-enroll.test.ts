import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { onCleanup } from '../helpers/cleanup.ts';
import { CLI, runCli } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';
import { eventually } from '../helpers/agent.ts';

describe('agent CLI', () => {
  test('`endpoint add --agent` prints the enroll command line; it enrolls; `agent run` reaches the hub', async (t) => {
    const hub = await startTestHub(t);
    const env = {
      CERTFLEET_HUB: hub.url,
      CERTFLEET_TOKEN: hub.token,
      CERTFLEET_CA_FILE: join(hub.dataDir, 'ca.pem'),
    };
    const added = await runCli(['endpoint', 'add', 'web1', '--agent', '--enroll-ttl', '2h'], env);
    assert.equal(added.code, 0, added.stderr);
    const line =
      /^\s+(certfleet agent enroll --hub (\S+) --token (\S+) --ca-fingerprint ([0-9a-f]{64}))$/m.exec(
        added.stdout,
      );
    assert.ok(line, added.stdout);
    assert.equal(line[2], hub.url);
    assert.equal(line[4], hub.caFingerprint);

    // On the endpoint: nothing but the printed command (no admin token, no CA file).
    const stateDir = join(await tempDir(t), 'agent');
    const clean = { CERTFLEET_HUB: '', CERTFLEET_TOKEN: '', CERTFLEET_CA_FILE: '' };
    const enrolled = await runCli([...line[1].split(' ').slice(1), '--state-dir', stateDir], clean);
    assert.equal(enrolled.code, 0, enrolled.stderr);
    assert.match(enrolled.stdout, /enrolled as endpoint web1/);
    assert.equal((await stat(join(stateDir, 'agent-key.pem'))).mode & 0o777, 0o600);
    const again = await runCli([...line[1].split(' ').slice(1), '--state-dir', `${stateDir}2`], clean);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /enrollment token already used/);

    const minted = await runCli(['endpoint', 'enroll-token', 'web1'], env);
    assert.match(
      minted.stdout,
      /certfleet agent enroll --hub \S+ --token cfe_\S+ --ca-fingerprint [0-9a-f]{64}/,
    );

    const agent = spawn(process.execPath, [CLI, 'agent', 'run', '--state-dir', stateDir], {
      env: { ...process.env, ...clean, CERTFLEET_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    agent.stdout!.on('data', (d) => (out += d));
    agent.stderr!.on('data', (d) => (out += d));
    onCleanup(t, () => {
      if (agent.exitCode === null) agent.kill('SIGKILL');
    });
    const endpointId = (await hub.ctx.store.getEndpoint('web1'))!.id;
    await eventually(
      async () => (await hub.ctx.store.lastSeen(endpointId)) !== undefined,
      30_000,
      `agent contact (${out})`,
    );
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGTERM');
    await exited;
    assert.match(out, /certfleet agent running/);
  });
});
