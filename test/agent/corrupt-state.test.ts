/**
 * Corrupted files in the agent's state directory: each is named with its fix, and nothing queued disappears
 * without a trace. Identity and state stop `certfleet agent run` (exit 1, message + hint, no stack trace); the
 * report queue and cached bundles are set aside and logged while the agent runs on.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { generateAgentKeys, saveIdentity } from '../../src/agent/agent-identity.ts';
import { AgentRunner, type DeployFn } from '../../src/agent/run-agent.ts';
import { createLogger } from '../../src/core/log.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';
import { createCertificate, enrollTestAgent, eventually, subscribe } from '../helpers/agent.ts';
import { tempDir } from '../helpers/tmp.ts';
import { onCleanup } from '../helpers/cleanup.ts';

/** An enrolled-looking state dir (the hub is never contacted: the agent stops before). */
async function localIdentity(t: TestContext): Promise<string> {
  const stateDir = join(await tempDir(t, 'certfleet-agent-'), 'state');
  await saveIdentity(stateDir, {
    hub: 'https://127.0.0.1:9',
    endpointId: randomUUID(),
    endpointName: 'web1',
    caPem: '',
    caFingerprint: '',
    enrolledAt: new Date().toISOString(),
    keys: generateAgentKeys(),
  });
  return stateDir;
}

/** Reports every step of a successful deploy at once, and records the certificate it was handed. */
const standInDeploy =
  (certs: string[]): DeployFn =>
  async (req, report) => {
    certs.push(req.bundle.certPem);
    for (const state of ['installed', 'reloaded', 'verified'] as const)
      await report({ state, at: new Date().toISOString() });
    return { state: 'verified' };
  };

function capture(): { logs: () => Array<Record<string, unknown>>; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const destination = new Writable({ write: (c, _e, cb) => (lines.push(c.toString()), cb()) });
  return {
    logs: () => lines.map((l) => JSON.parse(l)),
    logger: createLogger({ level: 'info', destination }),
  };
}

describe('corrupted identity or state stops the agent with the file and the fix', () => {
  const cases = [
    {
      file: 'agent.json',
      content: '{"hub": "https://127.0.0.1:9", "endpo',
      why: 'not valid JSON',
      fix: /enroll the agent again: `certfleet agent enroll/,
    },
    {
      file: 'agent.json',
      content: '{"hub": 7}\n',
      why: 'no hub, endpointId, endpointName, caPem',
      fix: /enroll the agent again/,
    },
    {
      file: 'agent-key.pem',
      content: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
      why: "it does not hold the agent's Ed25519 and X25519 keys",
      fix: /enroll the agent again/,
    },
    {
      file: 'state.json',
      content: '{"deployed": {"sub',
      why: 'not valid JSON',
      fix: /delete .*state\.json and start the agent again: it resyncs from the hub/,
    },
    { file: 'state.json', content: '[]', why: 'not the expected content', fix: /delete .*state\.json/ },
  ];
  for (const c of cases) {
    test(`${c.file}: ${c.why}`, async (t) => {
      const stateDir = await localIdentity(t);
      const path = join(stateDir, c.file);
      await writeFile(path, c.content, { mode: 0o600 });
      const r = await runCli(['agent', 'run', '--state-dir', stateDir], { CERTFLEET_LOG_LEVEL: 'silent' });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const [message, hint] = r.stderr.trimEnd().split('\n');
      assert.equal(message, `error: ${path} is corrupted (${c.why})`);
      assert.match(hint, /^hint: /);
      assert.match(hint, c.fix);
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
      assert.equal(await readFile(path, 'utf8'), c.content, 'the file is left for the operator');
    });
  }
});

describe('corrupted queue or cache is set aside and logged, and the agent runs on', () => {
  test('reports.json: renamed to reports.json.corrupt-<time> with its content, logged, and new reports still reach the hub', async (t) => {
    let runner: AgentRunner | undefined;
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    const agent = await enrollTestAgent(t, hub, 'web1');
    const subId = await subscribe(hub, 'web1', 'web');
    const broken = '[{"subscriptionId": "2f1c", "state": "verif';
    await writeFile(join(agent.stateDir, 'reports.json'), broken, { mode: 0o600 });

    const { logs, logger } = capture();
    runner = new AgentRunner({ stateDir: agent.stateDir, deploy: standInDeploy([]), logger });
    onCleanup(t, () => runner?.stop()); // registered last: stops before the directories go
    await runner.start();
    const version = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!;
    await eventually(
      async () => (await hub.ctx.store.getDeployment(subId, version.id))?.state === 'verified',
      10_000,
      'new reports reach the hub',
    );

    const aside = (await readdir(agent.stateDir)).filter((f) => f.startsWith('reports.json.corrupt-'));
    assert.equal(aside.length, 1);
    assert.equal(await readFile(join(agent.stateDir, aside[0]), 'utf8'), broken);
    const line = logs().find((l) => String(l.msg).startsWith('queued reports file is corrupted'));
    assert.equal(line?.level, 50, 'logged as an error');
    assert.equal(line?.file, join(agent.stateDir, 'reports.json'));
    assert.equal(line?.kept_as, join(agent.stateDir, aside[0]));
    assert.match(String(line?.hint), /were not sent: read it/);
  });

  test('a cached bundle: set aside, logged, fetched again from the hub and deployed', async (t) => {
    let runner: AgentRunner | undefined;
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    const agent = await enrollTestAgent(t, hub, 'web1');
    const subId = await subscribe(hub, 'web1', 'web');
    const version = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!;
    const bundlePath = join(agent.stateDir, 'bundles', `${version.id}.json`);
    await mkdir(join(agent.stateDir, 'bundles'), { mode: 0o700 });
    await writeFile(bundlePath, '{"versionId": "', { mode: 0o600 });

    const { logs, logger } = capture();
    const certs: string[] = [];
    runner = new AgentRunner({ stateDir: agent.stateDir, deploy: standInDeploy(certs), logger });
    onCleanup(t, () => runner?.stop()); // registered last: stops before the directories go
    await runner.start();
    await eventually(
      async () => (await hub.ctx.store.getDeployment(subId, version.id))?.state === 'verified',
      10_000,
      'deployed from the bundle fetched again',
    );
    assert.equal(certs.length, 1);
    assert.equal(certs[0], version.certPem);
    assert.equal(JSON.parse(await readFile(bundlePath, 'utf8')).versionId, version.id, 'cached again, whole');
    const line = logs().find((l) => String(l.msg).startsWith('cached bundle is corrupted'));
    assert.equal(line?.file, bundlePath);
    assert.match(String(line?.kept_as), /\.json\.corrupt-/);
    assert.equal(await readFile(String(line?.kept_as), 'utf8'), '{"versionId": "');
  });
});
