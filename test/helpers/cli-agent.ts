import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { onCleanup } from './cleanup.ts';
import { CLI, runCli } from './cli.ts';
import type { TestHub } from './hub.ts';
import { tempDir } from './tmp.ts';

/** The CLI's environment for a test hub: what an operator exports. */
export function cliEnv(hub: TestHub): NodeJS.ProcessEnv {
  return {
    CERTFLEET_HUB: hub.url,
    CERTFLEET_TOKEN: hub.token,
    CERTFLEET_CA_FILE: join(hub.dataDir, 'ca.pem'),
  };
}

/**
 * An agent endpoint made the way an operator makes one: `endpoint add NAME --agent`, the printed `agent enroll`
 * line, then `certfleet agent run` as a real process (stopped when the test ends, before its temp dir goes).
 */
export async function startCliAgent(
  t: TestContext,
  hub: TestHub,
  name: string,
): Promise<{ stateDir: string; output: () => string }> {
  const env = cliEnv(hub);
  const added = await runCli(['endpoint', 'add', name, '--agent'], env);
  if (added.code !== 0) throw new Error(`endpoint add failed: ${added.stderr}`);
  const line = /^\s+certfleet (agent enroll .*)$/m.exec(added.stdout);
  if (!line) throw new Error(`no enroll line in: ${added.stdout}`);
  const stateDir = join(await tempDir(t, 'certfleet-agent-'), 'state');
  const clean = { CERTFLEET_HUB: '', CERTFLEET_TOKEN: '', CERTFLEET_CA_FILE: '' };
  const enrolled = await runCli([...line[1].split(' '), '--state-dir', stateDir], clean);
  if (enrolled.code !== 0) throw new Error(`agent enroll failed: ${enrolled.stderr}`);
  const agent = spawn(process.execPath, [CLI, 'agent', 'run', '--state-dir', stateDir], {
    env: { ...process.env, ...clean, CERTFLEET_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  agent.stdout!.on('data', (d) => (out += d));
  agent.stderr!.on('data', (d) => (out += d));
  onCleanup(t, async () => {
    if (agent.exitCode !== null || agent.signalCode) return;
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (agent.exitCode === null && !agent.signalCode) agent.kill('SIGKILL');
  });
  return { stateDir, output: () => out };
}
