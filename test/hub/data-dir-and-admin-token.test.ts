import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import { createLogger } from '../../src/core/log.ts';
import { hubConfigSchema } from '../../src/hub/hub-config.ts';
import { openHubContext, startHub } from '../../src/hub/hub.ts';
import { CLI, runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { onCleanup } from '../helpers/cleanup.ts';

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

/** Cleanups run last-registered first (test/helpers/cleanup.ts): what is stopped here goes before its directory. */
function cleanupFirst(t: TestContext): (fn: () => Promise<unknown>) => void {
  return (fn) => onCleanup(t, fn);
}

/** A hub started in this process with its log captured as parsed pino lines. */
async function startLoggedHub(dataDir: string) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const hub = await startHub({
    dataDir,
    listen: '127.0.0.1:0',
    tls: false,
    config: hubConfigSchema.parse({ planner: { enabled: false } }),
    logger: createLogger({ level: 'info', destination }),
    env: {},
  });
  return { hub, logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const PERMISSION_WARNING = 'permissions too open in the data directory; fixed';

describe('the data directory is private at every start', () => {
  test('a directory left 0755 with 0644 files is narrowed to 0700 / 0600, and each fix is logged as a warning', async (t) => {
    const onEnd = cleanupFirst(t);
    const dir = join(await tempDir(t), 'data');
    // A real data directory from an earlier start, then loosened the way a careless copy or restore would.
    const first = await openHubContext({ dataDir: dir, env: {} });
    await first.store.close();
    await chmod(dir, 0o755);
    await chmod(join(dir, 'hub.db'), 0o644);
    await chmod(join(dir, 'master.key'), 0o644);
    // -wal and -shm are left behind by a hub that was killed.
    await writeFile(join(dir, 'hub.db-wal'), '', { mode: 0o644 });
    await writeFile(join(dir, 'hub.db-shm'), '', { mode: 0o644 });
    await chmod(join(dir, 'hub.db-wal'), 0o644);
    await chmod(join(dir, 'hub.db-shm'), 0o644);

    const { hub, logs } = await startLoggedHub(dir);
    onEnd(() => hub.close());

    assert.equal(await modeOf(dir), 0o700);
    for (const name of ['hub.db', 'hub.db-wal', 'hub.db-shm', 'master.key']) {
      assert.equal(await modeOf(join(dir, name)), 0o600, name);
    }
    const warnings = logs().filter((l) => l.msg === PERMISSION_WARNING);
    assert.ok(
      warnings.every((w) => w.level === 40),
      'logged at pino warn level',
    );
    assert.deepEqual(
      warnings.map((w) => [w.path, w.mode_was, w.mode_now]).sort(),
      [
        [dir, '0755', '0700'],
        [join(dir, 'hub.db'), '0644', '0600'],
        [join(dir, 'hub.db-shm'), '0644', '0600'],
        [join(dir, 'hub.db-wal'), '0644', '0600'],
        [join(dir, 'master.key'), '0644', '0600'],
      ].sort(),
    );
  });

  test('a new data directory is created private from the first byte even with umask 000, with nothing to fix', async (t) => {
    const onEnd = cleanupFirst(t);
    const dir = join(await tempDir(t), 'data');
    const umask = process.umask(0);
    onEnd(async () => process.umask(umask));

    const { hub, logs } = await startLoggedHub(dir);
    onEnd(() => hub.close());

    assert.equal(await modeOf(dir), 0o700);
    // WAL mode: -wal and -shm exist while the hub runs.
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('hub.db')).sort(), [
      'hub.db',
      'hub.db-shm',
      'hub.db-wal',
    ]);
    for (const name of ['hub.db', 'hub.db-wal', 'hub.db-shm', 'master.key']) {
      assert.equal(await modeOf(join(dir, name)), 0o600, name);
    }
    assert.deepEqual(
      logs().filter((l) => l.msg === PERMISSION_WARNING),
      [],
    );
  });
});

interface HubCli {
  url: string;
  token?: string;
  output: () => string;
  /** Environment pointing the CLI at this hub with `token`. */
  envWith(token: string): NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** Runs the real `certfleet hub` until it prints its URL (and, on the start that created it, the admin token). */
async function startHubCli(dataDir: string, env: NodeJS.ProcessEnv = {}): Promise<HubCli> {
  const child = spawn(process.execPath, [CLI, 'hub', '--data-dir', dataDir, '--listen', '127.0.0.1:0'], {
    env: { ...process.env, CERTFLEET_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode) return;
    child.kill('SIGTERM');
    await exited;
  };
  await new Promise<void>((resolve, reject) => {
    // The banner is written in one piece to stderr; stdout carries the log lines.
    const check = () => {
      if (/listening on \S+\n[\s\S]*hub CA: [^\n]*\n/.test(out)) resolve();
    };
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => ((out += d), check()));
    void exited.then(() => reject(new Error(`hub exited before listening:\n${out}`)));
  }).catch(async (e) => {
    await stop();
    throw e;
  });
  // On the start that created it, the token is in its 0600 file, never in the output.
  const url = /listening on (\S+)/.exec(out)![1];
  const tokenFile = /Admin token created \(first start\) and written to (\S+) \(0600\)/.exec(out)?.[1];
  const token = tokenFile ? (await readFile(tokenFile, 'utf8')).trim() : undefined;
  return {
    url,
    ...(token ? { token } : {}),
    output: () => out,
    envWith: (t) => ({ CERTFLEET_HUB: url, CERTFLEET_TOKEN: t, CERTFLEET_CA_FILE: join(dataDir, 'ca.pem') }),
    stop,
  };
}

/** A port that is taken for the whole test: something listens on it. */
async function busyPort(onEnd: (fn: () => Promise<unknown>) => void): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onEnd(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as { port: number }).port;
}

/** Lists token events through the API with `env`'s token: proves that token authenticates. */
async function tokenEvents(env: NodeJS.ProcessEnv) {
  const r = await runCli(['--json', 'events', '--kind', 'token.'], env);
  return { ...r, events: r.code === 0 ? (JSON.parse(r.stdout) as Array<Record<string, unknown>>) : [] };
}

describe('the bootstrap admin token is never lost', () => {
  test('a first start on a busy port fails naming the port and creates no token; the next start prints one that works', async (t) => {
    const onEnd = cleanupFirst(t);
    const dataDir = join(await tempDir(t), 'data');
    const port = await busyPort(onEnd);

    const failed = await runCli(['hub', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
      CERTFLEET_LOG_LEVEL: 'warn',
    });
    assert.equal(failed.code, 1, failed.stdout + failed.stderr);
    assert.match(failed.stderr, new RegExp(`error: address 127\\.0\\.0\\.1:${port} is already in use`));
    assert.match(failed.stderr, /hint: .*--listen/);
    assert.doesNotMatch(failed.stderr + failed.stdout, /\n\s+at /, 'no stack trace');
    assert.doesNotMatch(failed.stdout + failed.stderr, /Admin token/);

    const hub = await startHubCli(dataDir);
    onEnd(() => hub.stop());
    assert.ok(hub.token, `the second start writes the admin token to its file:\n${hub.output()}`);
    const { code, stderr, events } = await tokenEvents(hub.envWith(hub.token));
    assert.equal(code, 0, stderr);
    assert.deepEqual(
      events.map((e) => [e.kind, e.subject, e.actor]),
      [['token.created', 'token:bootstrap', 'system']],
      'exactly one admin token was ever created',
    );
  });

  test('reset-admin-token on a running hub: the new token works at once, the old one no longer does, and it is audited', async (t) => {
    const onEnd = cleanupFirst(t);
    const dataDir = join(await tempDir(t), 'data');
    const hub = await startHubCli(dataDir);
    onEnd(() => hub.stop());
    const oldToken = hub.token!;

    const reset = await runCli(['hub', 'reset-admin-token', '--data-dir', dataDir]);
    assert.equal(reset.code, 0, reset.stderr);
    const newToken = /Admin token[^\n]*\n\s+(\S+)\n/i.exec(reset.stdout)?.[1];
    assert.ok(newToken, reset.stdout);
    assert.notEqual(newToken, oldToken);
    assert.match(reset.stdout, /Revoked 1 earlier bootstrap admin token;/);
    assert.ok(
      !(await readdir(dataDir)).includes('admin-token'),
      "the first start's file, now stale, is gone",
    );

    const withNew = await tokenEvents(hub.envWith(newToken));
    assert.equal(withNew.code, 0, withNew.stderr);
    assert.deepEqual(
      withNew.events.map((e) => [e.kind, e.subject, e.actor]),
      [
        ['token.created', 'token:bootstrap', 'system'],
        ['token.revoked', 'token:bootstrap', 'cli:reset-admin-token'],
        ['token.created', 'token:bootstrap', 'cli:reset-admin-token'],
      ],
    );
    assert.ok(!JSON.stringify(withNew.events).includes(newToken), 'the token itself is not in the audit log');

    const withOld = await tokenEvents(hub.envWith(oldToken));
    assert.equal(withOld.code, 1);
    assert.match(withOld.stderr, /invalid API token/);
  });

  test('reset-admin-token with the wrong master key exits 1 naming the mismatch and changes nothing', async (t) => {
    const onEnd = cleanupFirst(t);
    const dataDir = join(await tempDir(t), 'data');
    const hub = await startHubCli(dataDir); // master key in <data-dir>/master.key
    onEnd(() => hub.stop());

    const reset = await runCli(['hub', 'reset-admin-token', '--data-dir', dataDir], {
      CERTFLEET_MASTER_KEY: 'f'.repeat(64),
    });
    assert.equal(reset.code, 1);
    assert.match(reset.stderr, /error: the master key does not open this data directory/);
    assert.match(reset.stderr, /hint: .*CERTFLEET_MASTER_KEY/);
    assert.doesNotMatch(reset.stdout, /cfa_/, 'no token printed');

    const { code, stderr, events } = await tokenEvents(hub.envWith(hub.token!));
    assert.equal(code, 0, `the old token still works: ${stderr}`);
    assert.equal(events.length, 1, 'no token revoked or created');
  });

  test('reset-admin-token on a directory that holds no hub exits 1 with a hint and creates nothing', async (t) => {
    const parent = await tempDir(t);
    const missing = join(parent, 'not-a-hub');
    const reset = await runCli(['hub', 'reset-admin-token', '--data-dir', missing]);
    assert.equal(reset.code, 1);
    assert.match(reset.stderr, /error: no hub data directory at .*not-a-hub \(hub\.db not found\)/);
    assert.match(reset.stderr, /hint: pass --data-dir/);
    assert.deepEqual(await readdir(parent), [], 'nothing created');

    // An empty directory (say, a mistyped path that exists) is refused the same way, and stays empty.
    await mkdir(missing);
    const again = await runCli(['hub', 'reset-admin-token', '--data-dir', missing]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /hub\.db not found/);
    assert.deepEqual(await readdir(missing), []);
  });
});
