/**
 * A real OpenSSH server for connector tests and bench/push.ts: a private `sshd -D` on a free loopback port with
 * its own host key and config, and a deploy user created with `useradd` (unique name, removed at the end) whose
 * keys are each bound to the forced command of deploy/certfleet-ssh-forced-command.sh with a config file of their
 * own, exactly as docs/connectors.md tells operators to set it up. Optionally a second user with a plain key (a
 * shell login, no forced command) for peers that have no least-privilege recipe. `stop()` (or, in tests, the
 * cleanup registered by `startTestSshd`) stops sshd, ends what the users still run, removes the users, then the
 * temp dir; a start that fails half-way undoes what it made.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFile,
  chmod,
  chown,
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { onCleanup, runLastFirst, type Cleanup } from './cleanup.ts';
import { freePort } from './nginx.ts';
import { reapOnExit } from './process-reaper.ts';

export const SSHD_BIN = '/usr/sbin/sshd';
const FORCED_COMMAND = join(import.meta.dirname, '..', '..', 'deploy', 'certfleet-ssh-forced-command.sh');

export interface ForcedConfig {
  allow: string[];
  configTest?: string;
  reload?: string;
}

/** One key of the deploy user, bound to the forced command with its own config file (one "host" of the recipe). */
export interface ForcedKey {
  /** The private key (OpenSSH format), for the hub. */
  privateKeyPem: string;
  /** The forced command's config file (root-owned): `allow`, `config_test`, `reload` lines. */
  writeForcedConfig(lines: ForcedConfig): Promise<void>;
}

export interface SshdUser {
  user: string;
  uid: number;
  gid: number;
  /** A directory owned by the user, under the sshd's temp dir. */
  userDir(name: string): Promise<string>;
}

export interface TestSshd extends SshdUser, ForcedKey {
  port: number;
  /** The listening sshd (its reaped children's CPU time adds up in its /proc stat). */
  pid: number;
  dir: string;
  /** The host key's SHA256 fingerprint as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** `[127.0.0.1]:PORT <host key>`: a known_hosts line for OpenSSH clients. */
  knownHostsLine: string;
  /**
   * Another key for the deploy user with a forced-command config file of its own; `command`: another forced
   * command (a path the deploy user can run) instead of this version's script.
   */
  addForcedKey(opts?: { command?: string }): Promise<ForcedKey>;
  /** With `shellUser`: a user whose key (`keyPath`, 0600) logs in to a plain shell. */
  shell?: SshdUser & { keyPath: string };
  /** Session channels sshd has started so far ("Starting session" lines of its VERBOSE log). */
  sessions(): number;
  /** Stops sshd, ends the users' processes, removes the users, then the temp dir. */
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** Also create a user with a plain (unrestricted) key. */
  shellUser?: boolean;
  /** sshd's MaxStartups: its default (10:30:100) starts dropping handshakes once 10 are in flight. */
  maxStartups?: number;
}

function sh(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** PIDs of processes run by `uid` (the forced command, a command it started), read from /proc. */
async function processesOf(uid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(`/proc/${name}/status`, 'utf8').catch(() => '');
    const m = /^Uid:\s+(\d+)/m.exec(status);
    if (m && Number(m[1]) === uid) out.push(Number(name));
  }
  return out;
}

/** A fresh user with its home under `dir`; its removal (after ending its processes) goes on `cleanups`. */
async function createUser(dir: string, prefix: string, cleanups: Cleanup[]): Promise<SshdUser> {
  const user = `${prefix}${randomBytes(4).toString('hex')}`;
  const home = join(dir, `home-${user}`);
  await mkdir(home);
  // '*' (not the default '!'): an account without a password that sshd does not treat as locked.
  await sh('useradd', ['-M', '-d', home, '-s', '/bin/sh', '-p', '*', user]);
  const uid = Number((await sh('id', ['-u', user])).trim());
  const gid = Number((await sh('id', ['-g', user])).trim());
  cleanups.push(async () => {
    for (const pid of await processesOf(uid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sh('userdel', [user]);
  });
  await chown(home, uid, gid);
  return {
    user,
    uid,
    gid,
    async userDir(name) {
      const d = join(dir, name);
      await mkdir(d, { mode: 0o755 });
      await chown(d, uid, gid);
      return d;
    },
  };
}

/** Starts sshd and its users; call `stop()` when done (it runs even when only part was started). */
export async function startSshd(opts: SshdOptions = {}): Promise<TestSshd> {
  const cleanups: Cleanup[] = [];
  const stop = () => runLastFirst(cleanups);
  try {
    return await start(opts, cleanups, stop);
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

/** `startSshd` for a test: stopped when the test ends. */
export async function startTestSshd(t: TestContext, opts: SshdOptions = {}): Promise<TestSshd> {
  const sshd = await startSshd(opts);
  onCleanup(t, () => sshd.stop());
  t.diagnostic(`sshd on 127.0.0.1:${sshd.port}, deploy user ${sshd.user}`);
  return sshd;
}

async function start(opts: SshdOptions, cleanups: Cleanup[], stop: () => Promise<void>): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-sshd-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755); // the deploy user runs the forced command from here
  const deploy = await createUser(dir, 'cfssh', cleanups);
  const shellUser = opts.shellUser ? await createUser(dir, 'cfsh', cleanups) : undefined;

  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  const hostKeyFingerprint = /(SHA256:\S+)/.exec(
    await sh('ssh-keygen', ['-lf', join(dir, 'host_key.pub')]),
  )![1];
  const script = join(dir, 'certfleet-ssh-forced-command.sh');
  await copyFile(FORCED_COMMAND, script);
  await chmod(script, 0o755);
  const keysDir = join(dir, 'keys');
  await mkdir(keysDir, { mode: 0o700 });
  const authorizedKeys = (user: string) => join(dir, `authorized_keys.${user}`);
  await writeFile(authorizedKeys(deploy.user), '', { mode: 0o644 });

  let keys = 0;
  const newKey = async (id: number): Promise<{ path: string; pub: string }> => {
    const path = join(keysDir, `key-${id}`);
    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
    return { path, pub: (await readFile(`${path}.pub`, 'utf8')).trim() };
  };
  const addForcedKey = async (opts: { command?: string } = {}): Promise<ForcedKey> => {
    const id = ++keys;
    const key = await newKey(id);
    const forcedConf = join(dir, `ssh-connector-${id}.conf`);
    await writeFile(forcedConf, '', { mode: 0o644 });
    // The recipe of docs/connectors.md: the key can do nothing but the forced command.
    await appendFile(
      authorizedKeys(deploy.user),
      `restrict,command="${opts.command ?? script} ${forcedConf}" ${key.pub}\n`,
    );
    return {
      privateKeyPem: await readFile(key.path, 'utf8'),
      async writeForcedConfig(c) {
        const lines = [
          ...c.allow.map((a) => `allow ${a}`),
          ...(c.configTest ? [`config_test ${c.configTest}`] : []),
          ...(c.reload ? [`reload ${c.reload}`] : []),
        ];
        await writeFile(forcedConf, `${lines.join('\n')}\n`, { mode: 0o644 });
      },
    };
  };
  const first = await addForcedKey();
  let shell: TestSshd['shell'];
  if (shellUser) {
    const key = await newKey(++keys);
    await writeFile(authorizedKeys(shellUser.user), `${key.pub}\n`, { mode: 0o644 });
    shell = { ...shellUser, keyPath: key.path };
  }

  // Debian's sshd refuses to start without its privilege separation directory.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys.%u')}`,
      `AllowUsers ${[deploy.user, ...(shellUser ? [shellUser.user] : [])].join(' ')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // The temp dir lives under /tmp (world-writable), which StrictModes would refuse for authorized_keys.
      'StrictModes no',
      ...(opts.maxStartups ? [`MaxStartups ${opts.maxStartups}`] : []),
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(SSHD_BIN, ['-D', '-e', '-f', config], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  let sessions = 0;
  let partial = '';
  child.stderr!.on('data', (d) => {
    log = (log + d).slice(-64 * 1024);
    const lines = (partial + d).split('\n');
    partial = lines.pop()!;
    sessions += lines.filter((l) => l.includes('Starting session:')).length;
  });
  let exited = false;
  const exitedP = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  // If the process dies without its cleanup, do not leave a detached sshd behind.
  const killOnExit = () => {
    try {
      if (!exited && child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const forgetReaper = reapOnExit(killOnExit);
  cleanups.push(async () => {
    forgetReaper();
    if (exited || !child.pid) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    await Promise.race([exitedP, sleep(3000)]);
  });
  const deadline = Date.now() + 10_000;
  while (!/Server listening/.test(log)) {
    if (exited) throw new Error(`sshd exited at startup: ${log}`);
    if (Date.now() > deadline) throw new Error(`sshd did not start within 10 s: ${log}`);
    await sleep(25);
  }
  const hostPub = (await readFile(join(dir, 'host_key.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ');

  return {
    ...deploy,
    ...first,
    port,
    pid: child.pid!,
    dir,
    hostKeyFingerprint,
    knownHostsLine: `[127.0.0.1]:${port} ${hostPub}`,
    addForcedKey,
    sessions: () => sessions,
    ...(shell ? { shell } : {}),
    stop,
  };
}
