/**
 * A real OpenSSH server for connector tests: a private `sshd -D` on a free loopback port with its own host key and
 * config, a deploy user created with `useradd` (unique name, removed at the end) whose only key is bound to the
 * forced command of deploy/certfleet-ssh-forced-command.sh, exactly as docs/connectors.md tells operators to set
 * it up. Cleanup (registered on the test) stops sshd, ends what the user still runs, removes the user, then the
 * temp dir.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { onCleanup } from './cleanup.ts';
import { freePort } from './nginx.ts';

export const SSHD_BIN = '/usr/sbin/sshd';
const FORCED_COMMAND = join(import.meta.dirname, '..', '..', 'deploy', 'certfleet-ssh-forced-command.sh');

export interface TestSshd {
  port: number;
  dir: string;
  user: string;
  uid: number;
  gid: number;
  /** The deploy user's private key (OpenSSH format), for the hub. */
  privateKeyPem: string;
  /** The host key's SHA256 fingerprint as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** The forced command's config file (root-owned): `allow`, `config_test`, `reload` lines. */
  writeForcedConfig(lines: { allow: string[]; configTest?: string; reload?: string }): Promise<void>;
  /** A directory owned by the deploy user (where its outputs go). */
  userDir(name: string): Promise<string>;
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

export async function startTestSshd(t: TestContext): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-sshd-'));
  onCleanup(t, () => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755); // the deploy user runs the forced command from here
  const user = `cfssh${randomBytes(4).toString('hex')}`;
  const home = join(dir, 'home');
  await mkdir(home);
  // '*' (not the default '!'): an account without a password that sshd does not treat as locked.
  await sh('useradd', ['-M', '-d', home, '-s', '/bin/sh', '-p', '*', user]);
  const uid = Number((await sh('id', ['-u', user])).trim());
  const gid = Number((await sh('id', ['-g', user])).trim());
  onCleanup(t, async () => {
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

  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  const hostKeyFingerprint = /(SHA256:\S+)/.exec(
    await sh('ssh-keygen', ['-lf', join(dir, 'host_key.pub')]),
  )![1];
  const script = join(dir, 'certfleet-ssh-forced-command.sh');
  await copyFile(FORCED_COMMAND, script);
  await chmod(script, 0o755);
  const forcedConf = join(dir, 'ssh-connector.conf');
  await writeFile(forcedConf, '', { mode: 0o644 });
  // The recipe of docs/connectors.md: the key can do nothing but the forced command.
  const pub = (await readFile(join(dir, 'client_key.pub'), 'utf8')).trim();
  await writeFile(join(dir, 'authorized_keys'), `restrict,command="${script} ${forcedConf}" ${pub}\n`, {
    mode: 0o644,
  });

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
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `AllowUsers ${user}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // The temp dir lives under /tmp (world-writable), which StrictModes would refuse for authorized_keys.
      'StrictModes no',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(SSHD_BIN, ['-D', '-e', '-f', config], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  let exited = false;
  const exitedP = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  // If the test process dies without its cleanup, do not leave a detached sshd behind.
  const killOnExit = () => {
    try {
      if (!exited && child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', killOnExit);
  onCleanup(t, async () => {
    process.off('exit', killOnExit);
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
  t.diagnostic(`sshd on 127.0.0.1:${port}, deploy user ${user}`);

  return {
    port,
    dir,
    user,
    uid,
    gid,
    privateKeyPem: await readFile(join(dir, 'client_key'), 'utf8'),
    hostKeyFingerprint,
    async writeForcedConfig(c) {
      const lines = [
        ...c.allow.map((a) => `allow ${a}`),
        ...(c.configTest ? [`config_test ${c.configTest}`] : []),
        ...(c.reload ? [`reload ${c.reload}`] : []),
      ];
      await writeFile(forcedConf, `${lines.join('\n')}\n`, { mode: 0o644 });
    },
    async userDir(name) {
      const d = join(dir, name);
      await mkdir(d, { mode: 0o755 });
      await chown(d, uid, gid);
      return d;
    },
  };
}
