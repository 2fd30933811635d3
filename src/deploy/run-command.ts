import { spawn } from 'node:child_process';
import type { CommandResult } from './deploy-target.ts';

export type { CommandResult };

/**
 * Runs a subscription's config test and reload commands on this machine (the agent's, or the hub's for a command
 * connector): `/bin/sh -c` in a process group of its own, so a timeout or abort ends the command and everything it
 * started (SIGTERM, then SIGKILL after a grace period). Never throws for a failing command: the result says what
 * happened.
 */
export const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;
const TAIL_BYTES = 2048;
const KILL_GRACE_MS = 1000;

export interface RunCommandOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  signal?: AbortSignal;
  cwd?: string;
}

/** Keeps only the last `max` bytes seen. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size - this.chunks[0].length >= this.max) this.size -= this.chunks.shift()!.length;
  }
  toString(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.max)).toString('utf8');
  }
}

export function runCommand(command: string, opts: RunCommandOptions = {}): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const started = performance.now();
  const out = new Tail(TAIL_BYTES);
  const err = new Tail(TAIL_BYTES);
  return new Promise((resolve) => {
    let timedOut = false;
    let aborted = false;
    let settled = false;
    const child = spawn('/bin/sh', ['-c', command], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      detached: true, // own process group: kill(-pid) reaches grandchildren too
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));

    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // the group is already gone
      }
    };
    let graceTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      killGroup('SIGTERM');
      graceTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, timeoutMs);
    const onAbort = () => {
      aborted = true;
      stop();
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      // Whatever the shell left behind in its group goes with it (a backgrounded sleep holding our pipes).
      if (timedOut || aborted) killGroup('SIGKILL');
      let stderrTail = err.toString();
      if (spawnError) stderrTail += `\n${spawnError.message}`;
      if (timedOut) stderrTail += `\n[certfleet: command timed out after ${timeoutMs} ms and was killed]`;
      resolve({
        command,
        exitCode,
        signal,
        timedOut,
        aborted,
        ok: exitCode === 0 && !timedOut && !aborted,
        stdoutTail: out.toString(),
        stderrTail: stderrTail.slice(-TAIL_BYTES),
        durationMs: Math.round(performance.now() - started),
      });
    };
    child.on('error', (e) => finish(null, null, e));
    // 'close' waits for the pipes; a daemon that keeps them open must not hold us, so 'exit' + a short drain.
    child.on('close', (code, sig) => finish(code, sig));
    child.on('exit', (code, sig) => {
      setTimeout(() => finish(code, sig), 500).unref();
    });
  });
}
