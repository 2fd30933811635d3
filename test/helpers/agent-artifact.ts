import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, parse } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { stopProcess, type CliResult } from './cli.ts';
import { onCleanup } from './cleanup.ts';
import { tempDir } from './tmp.ts';
import { reapChild } from './process-reaper.ts';

const BUILD = join(import.meta.dirname, '..', '..', 'scripts', 'build.mjs');

/** The environment of a stock endpoint: no module search path or preloaded loader from the test runner. */
function endpointEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  delete env.NODE_PATH;
  return env;
}

/** The one-file agent as an endpoint gets it: `npm run build:agent`'s output, alone in an empty directory. */
export interface AgentArtifact {
  file: string;
  dir: string;
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** Starts a long-running command (`agent run`); stopped with SIGTERM when the test ends. */
  start(args: string[], env?: NodeJS.ProcessEnv): ChildProcess & { output: () => string };
  /** `stateDir` (in the artifact's directory) for `agent run --state-dir`. */
  stateDir: string;
  /** `agent enroll` with a minted token, with one or more hub URLs, into `stateDir`; throws unless it exits 0. */
  enroll(hubs: string | string[], minted: { token: string; caFingerprint: string }): Promise<CliResult>;
}

export async function buildAgentArtifact(t: TestContext): Promise<AgentArtifact> {
  const dir = await tempDir(t, 'certfleet-endpoint-');
  // Nothing to resolve packages from: no node_modules in the directory or any parent.
  for (let d = dir; ; d = parse(d).dir) {
    if (existsSync(join(d, 'node_modules'))) throw new Error(`${d}/node_modules exists: not a bare endpoint`);
    if (d === parse(d).root) break;
  }
  const file = join(dir, 'certfleet-agent.mjs');
  await promisify(execFile)(process.execPath, [BUILD, '--agent', '--outfile', file, '--quiet']);
  const stateDir = join(dir, 'state');
  const run: AgentArtifact['run'] = (args, env) =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [file, ...args],
        { cwd: dir, env: endpointEnv(env), timeout: 120_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
    });
  return {
    file,
    dir,
    stateDir,
    run,
    async enroll(hubs, minted) {
      const hubArgs = [hubs].flat().flatMap((url) => ['--hub', url]);
      const args = [
        'agent',
        'enroll',
        ...hubArgs,
        '--token',
        minted.token,
        '--ca-fingerprint',
        minted.caFingerprint,
      ];
      const enrolled = await run([...args, '--state-dir', stateDir]);
      if (enrolled.code !== 0) throw new Error(`agent enroll exited ${enrolled.code}:\n${enrolled.stderr}`);
      return enrolled;
    },
    start: (args, env) => {
      const child = spawn(process.execPath, [file, ...args], {
        cwd: dir,
        env: endpointEnv(env),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      reapChild(child);
      onCleanup(t, () => stopProcess(child));
      return Object.assign(child, { output: () => out });
    },
  };
}
