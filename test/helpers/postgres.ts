/**
 * A private PostgreSQL cluster for tests: `initdb` in a temp directory, a free loopback port, a Unix socket in the
 * same directory, stopped (`pg_ctl stop -m fast`) before the directory is removed. One cluster serves a whole test
 * file (starting one takes a second or two); every test gets a fresh database of its own in it.
 *
 *   const postgres = sharedPostgres();           // at the top level of the file
 *   test('...', async (t) => { const url = await postgres.database(); ... });
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { suiteCleanup, type Cleanup } from './cleanup.ts';
import { reapOnExit } from './process-reaper.ts';

export interface PostgresCluster {
  port: number;
  dir: string;
  /** `postgres://` URL of a database in this cluster. */
  url(database: string): string;
  /**
   * Creates an empty database with a random name and returns its URL; `icuLocale` gives it that ICU collation
   * (e.g. 'en-US', where 'B' sorts after 'a') instead of the cluster's byte order.
   */
  createDatabase(opts?: { icuLocale?: string }): Promise<string>;
  /** `pg_ctl stop -m fast`; idempotent. */
  stop(): Promise<void>;
}

const SUPERUSER = 'certfleet';

/** The directory of initdb/pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin. */
export function postgresBinDir(): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error('PostgreSQL server binaries not found (initdb); install Debian package `postgresql`');
  }
  return join(root, versions[0], 'bin');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The command line of a server binary: as root, run as the `postgres` system user (initdb and postgres refuse root). */
function asServerUser(bin: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

/** Runs a server binary (see asServerUser). */
function run(bin: string, args: string[]): Promise<void> {
  const [cmd, argv] = asServerUser(bin, args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${bin} ${args.join(' ')} exited ${code}:\n${out}`)),
    );
  });
}

/**
 * Starts a cluster; `register` receives its cleanups (stop, then remove the directory: registered in reverse, as
 * cleanups run last-registered first).
 */
export async function startPostgres(register: (fn: Cleanup) => void): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-pg-'));
  register(() => rm(dir, { recursive: true, force: true }));
  if (process.getuid?.() === 0) {
    const { uid, gid } = await postgresUser();
    await chown(dir, uid, gid);
  }
  const data = join(dir, 'data');
  await run(join(bin, 'initdb'), ['-D', data, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    // a test cluster: durability is not what is tested, speed on a busy machine is
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=200',
  ].join(' ');
  let stopped = false;
  let forgetReaper = () => {};
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await run(join(bin, 'pg_ctl'), ['-D', data, 'stop', '-m', 'fast', '-w']);
    forgetReaper();
  };
  // pg_ctl starts a daemon, not a child: if this process is ended first, stop the cluster synchronously.
  forgetReaper = reapOnExit(
    () => void spawnSync(...asServerUser(join(bin, 'pg_ctl'), ['-D', data, 'stop', '-m', 'immediate'])),
  );
  await run(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-o', options, '-w', 'start']);
  register(stop);
  const url = (database: string) => `postgres://${SUPERUSER}@127.0.0.1:${port}/${database}`;
  return {
    port,
    dir,
    url,
    stop,
    async createDatabase(opts = {}) {
      const name = `cf_${randomBytes(6).toString('hex')}`;
      const collation = opts.icuLocale
        ? ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${opts.icuLocale.replace(/[^A-Za-z0-9-]/g, '')}'`
        : '';
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name} STRATEGY FILE_COPY${collation}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
  };
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const { readFile } = await import('node:fs/promises');
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('no `postgres` system user (install Debian package `postgresql`)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * One cluster for the tests of a file, started on first use and stopped when the file's tests are done. Call at
 * the top level of the test file.
 */
export function sharedPostgres(): {
  cluster(): Promise<PostgresCluster>;
  database(opts?: { icuLocale?: string }): Promise<string>;
} {
  const register = suiteCleanup();
  let started: Promise<PostgresCluster> | undefined;
  const cluster = () => (started ??= startPostgres(register));
  return { cluster, database: async (opts) => (await cluster()).createDatabase(opts) };
}
