/**
 * A test file that node's test runner ends with SIGTERM (past its timeout) runs no cleanups; the reaper
 * (test/helpers/process-reaper.ts) still stops what it started, so no hub, server or database outlives it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { stopProcess } from '../helpers/cli.ts';

const HELPERS = resolve(import.meta.dirname, '../helpers');

/** Runs `body` (TypeScript, top-level await) in a child node process; resolves with its first stdout line. */
async function startScript(t: Parameters<typeof tempDir>[0], body: string) {
  const dir = await tempDir(t);
  const file = join(dir, 'script.mts');
  await writeFile(file, body);
  const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  // SIGTERM first, so that a script left running by a failed assertion still reaps what it started.
  onCleanup(t, () => stopProcess(child));
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const firstLine = await new Promise<string>((ok, fail) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) ok(out.split('\n')[0]);
    });
    child.once('exit', (code) => fail(new Error(`script exited ${code} before its first line:\n${err}`)));
  });
  const exited = new Promise<NodeJS.Signals | null>((ok) =>
    child.once('exit', (_code, signal) => ok(signal)),
  );
  return { child, firstLine, exited };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`still not true after 30 s: ${what}`);
}

test('a child process a test started is killed when the test process is ended by SIGTERM', async (t) => {
  const script = await startScript(
    t,
    `import { spawn } from 'node:child_process';
import { reapChild } from ${JSON.stringify(join(HELPERS, 'process-reaper.ts'))};
const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
reapChild(child);
console.log(child.pid);
setInterval(() => {}, 1000);
`,
  );
  const pid = Number(script.firstLine);
  onCleanup(t, () => void (alive(pid) && process.kill(pid, 'SIGKILL')));
  assert.ok(alive(pid), 'the grandchild runs');
  script.child.kill('SIGTERM');
  assert.equal(await script.exited, 'SIGTERM', 'the test process still ends by the signal it was sent');
  await until(`process ${pid} is gone`, () => !alive(pid));
});

test('a PostgreSQL cluster a test started is stopped when the test process is ended by SIGTERM', async (t) => {
  const script = await startScript(
    t,
    `import { startPostgres } from ${JSON.stringify(join(HELPERS, 'postgres.ts'))};
const cluster = await startPostgres(() => {});
console.log(cluster.port + ' ' + cluster.dir);
setInterval(() => {}, 1000);
`,
  );
  const [port, dir] = script.firstLine.split(' ');
  onCleanup(t, async () => {
    const { rm } = await import('node:fs/promises');
    await rm(dir, { recursive: true, force: true });
  });
  const accepts = () =>
    new Promise<boolean>((ok) => {
      const s = connect(Number(port), '127.0.0.1');
      s.once('connect', () => (s.destroy(), ok(true)));
      s.once('error', () => ok(false));
    });
  assert.ok(await accepts(), 'the cluster accepts connections before the signal');
  script.child.kill('SIGTERM');
  await script.exited;
  await until(`nothing listens on port ${port}`, async () => !(await accepts()));
});
