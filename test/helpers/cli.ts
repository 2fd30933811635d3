import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { onCleanup } from './cleanup.ts';
import { tempDir } from './tmp.ts';
import { reapChild } from './process-reaper.ts';

/** The installed binary: bin/certfleet.js runs the compiled dist/ (scripts/run-tests.mjs builds it first). */
export const CLI = join(import.meta.dirname, '..', '..', 'bin', 'certfleet.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `certfleet` binary, as a user would: compiled JavaScript, no TypeScript loader. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

export interface HubProcess {
  url: string;
  token: string;
  dataDir: string;
  /** Environment that points the CLI at this hub. */
  env: NodeJS.ProcessEnv;
  output: () => string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `certfleet hub` as a child process on a free port, the way a user would. With `dataDir` (a restart, or a
 * second hub) the admin token is not waited for, and `token` is empty unless this start created it.
 */
export async function startHubProcess(
  t: TestContext,
  extraEnv: NodeJS.ProcessEnv = {},
  opts: { dataDir?: string; args?: string[] } = {},
): Promise<HubProcess> {
  const dataDir = opts.dataDir ?? join(await tempDir(t), 'data');
  const args = ['hub', '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...(opts.args ?? [])];
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, CERTFLEET_LOG_LEVEL: 'warn', CERTFLEET_CHECK_RESPONSES: '1', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  reapChild(child);
  const stop = () => stopProcess(child);
  onCleanup(t, stop);
  const deadline = Date.now() + 60_000;
  // A first start's banner ends with the admin token's file (the token itself is only in that file).
  const started = () => (opts.dataDir ? /hub CA: [^\n]*\n/.test(out) : /written to (\S+) \(0600\)/.test(out));
  while (!started() || !/listening on (\S+)/.test(out)) {
    if (child.exitCode !== null) throw new Error(`hub exited early:\n${out}`);
    if (Date.now() > deadline) throw new Error(`hub did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /listening on (\S+)/.exec(out)![1];
  const tokenFile = /written to (\S+) \(0600\)/.exec(out)?.[1];
  const token = tokenFile ? (await readFile(tokenFile, 'utf8')).trim() : '';
  const env = { CERTFLEET_HUB: url, CERTFLEET_TOKEN: token, CERTFLEET_CA_FILE: join(dataDir, 'ca.pem') };
  return { url, token, dataDir, env, output: () => out, process: child, stop };
}

/** SIGTERM, then SIGKILL if it has not exited within 5 s; resolves at once for a process that already ended. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}
