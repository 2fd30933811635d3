import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { onCleanup } from './cleanup.ts';
import { CLI, runCli } from './cli.ts';
import type { TestHub } from './hub.ts';
import { tempDir } from './tmp.ts';
import { reapChild } from './process-reaper.ts';

/** The CLI's environment for a test hub: what an operator exports. */
export function cliEnv(hub: Pick<TestHub, 'url' | 'token' | 'dataDir'>): NodeJS.ProcessEnv {
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
  hub: Pick<TestHub, 'url' | 'token' | 'dataDir'>,
  name: string,
): Promise<{ stateDir: string; output: () => string; stop: () => Promise<void>; start: () => void }> {
  const env = cliEnv(hub);
  const added = await runCli(['endpoint', 'add', name, '--agent'], env);
  if (added.code !== 0) throw new Error(`endpoint add failed: ${added.stderr}`);
  const line = /^\s+certfleet (agent enroll .*)$/m.exec(added.stdout);
  if (!line) throw new Error(`no enroll line in: ${added.stdout}`);
  const stateDir = join(await tempDir(t, 'certfleet-agent-'), 'state');
  const clean = { CERTFLEET_HUB: '', CERTFLEET_TOKEN: '', CERTFLEET_CA_FILE: '' };
  const enrolled = await runCli([...line[1].split(' '), '--state-dir', stateDir], clean);
  if (enrolled.code !== 0) throw new Error(`agent enroll failed: ${enrolled.stderr}`);
  let out = '';
  let agent: ChildProcess | undefined;
  const start = () => {
    agent = spawn(process.execPath, [CLI, 'agent', 'run', '--state-dir', stateDir], {
      env: { ...process.env, ...clean, CERTFLEET_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    reapChild(agent);
    agent.stdout!.on('data', (d) => (out += d));
    agent.stderr!.on('data', (d) => (out += d));
  };
  /** SIGTERM, then SIGKILL after 5 s; a no-op when it is not running. */
  const stop = async () => {
    const a = agent;
    if (!a || a.exitCode !== null || a.signalCode) return;
    const exited = new Promise((r) => a.once('exit', r));
    a.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (a.exitCode === null && !a.signalCode) a.kill('SIGKILL');
  };
  start();
  onCleanup(t, stop);
  return { stateDir, output: () => out, stop, start };
}
