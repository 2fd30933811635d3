/**
 * Kills what a test started when the test process ends without running its cleanups. Node's test runner ends a
 * file that ran past its timeout with SIGTERM, and a signal ends a process without 'exit' handlers: the hubs,
 * PostgreSQL clusters and servers the file started would stay behind and slow or break every later file. Each
 * reaper is synchronous (an exit handler cannot wait) and runs once, at 'exit' or at SIGTERM/SIGINT/SIGHUP.
 */
import type { ChildProcess } from 'node:child_process';

const reapers = new Set<() => void>();
let installed = false;

/** Registers `kill` to run if the process ends first; call the returned function once the thing is stopped. */
export function reapOnExit(kill: () => void): () => void {
  install();
  reapers.add(kill);
  return () => void reapers.delete(kill);
}

/** The usual reaper: SIGKILL a child (or its process group when it was spawned `detached`). */
export function reapChild(child: ChildProcess, opts: { group?: boolean } = {}): () => void {
  const forget = reapOnExit(() => {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
    try {
      if (opts.group) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // already gone
    }
  });
  child.once('exit', forget);
  return forget;
}

function reapAll(): void {
  for (const kill of [...reapers]) {
    reapers.delete(kill);
    try {
      kill();
    } catch {
      // the others must still run
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', reapAll);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    // Once: with no other listener left, the signal is raised again so that its default action ends the process
    // as it was asked to (other listeners, such as the test runner's, were called by this same signal).
    process.once(sig, () => {
      reapAll();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}
