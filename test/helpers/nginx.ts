/**
 * A real nginx (Debian's /usr/sbin/nginx) for tests: a non-daemon master with its own prefix, config, pid file
 * and logs in a temp dir, serving TLS on 127.0.0.1:<free port> (and [::1] on request). Starts in its own process
 * group so stop() takes down master and workers together; reload() waits until new workers serve.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { chmod, chown, mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { onCleanup } from './cleanup.ts';
import { makeTestPki } from './test-pki.ts';
import { reapOnExit } from './process-reaper.ts';

export const NGINX_BIN = '/usr/sbin/nginx';

export interface NginxServerBlock {
  serverNames: string[];
  certPath: string;
  keyPath: string;
}

export interface StartNginxOptions {
  certPath: string;
  keyPath: string;
  /** Fixed port; default: a free one. */
  port?: number;
  /** Also listen on [::1]:port. */
  ipv6?: boolean;
  /** More `server` blocks on the same port: structured (by server_name), or raw nginx text placed in `http {}`. */
  extraServers?: (NginxServerBlock | string)[];
  /** Run master and workers as this user (its prefix dir is given to it), e.g. a connector test's deploy user. */
  runAs?: { uid: number; gid: number };
}

export interface NginxHandle {
  port: number;
  /** Temp prefix dir holding conf, pid, logs. */
  dir: string;
  confPath: string;
  pid: number;
  /** `nginx -p … -c … -e …`: the command line this instance is driven with; append `-t` or `-s reload`. */
  command: string;
  /** Sends `nginx -s reload` and resolves once the new configuration is serving (workers replaced). */
  reload(opts?: { timeoutMs?: number }): Promise<void>;
  /** `nginx -t` on the current config file. */
  test(): Promise<{ ok: boolean; stderr: string }>;
  /** Rewrites nginx.conf for new cert/key paths or servers (call reload() afterwards). */
  writeConfig(opts: Omit<StartNginxOptions, 'port'>): Promise<void>;
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function renderConfig(dir: string, port: number, o: Omit<StartNginxOptions, 'port'>): string {
  const listen = (extra = '') =>
    [`listen 127.0.0.1:${port} ssl${extra};`, ...(o.ipv6 ? [`listen [::1]:${port} ssl${extra};`] : [])]
      .map((l) => `    ${l}`)
      .join('\n');
  const server = (names: string[], cert: string, key: string, isDefault = false) => `  server {
${listen(isDefault ? ' default_server' : '')}
    server_name ${names.join(' ')};
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    location / { return 200 "certfleet test nginx\\n"; }
  }`;
  const extras = (o.extraServers ?? []).map((s) =>
    typeof s === 'string' ? s : server(s.serverNames, s.certPath, s.keyPath),
  );
  return `# written by test/helpers/nginx.ts
daemon off;
master_process on;
worker_processes 1;
${o.runAs ? '' : 'user root;'}
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} info;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'tmp', 'body')};
  proxy_temp_path ${join(dir, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(dir, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(dir, 'tmp', 'scgi')};
  ssl_protocols TLSv1.2 TLSv1.3;
  keepalive_timeout 2s;
${server(['_'], o.certPath, o.keyPath, true)}
${extras.join('\n')}
}
`;
}

function run(args: string[], runAs?: StartNginxOptions['runAs']): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(NGINX_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'], ...runAs });
    let stderr = '';
    p.stderr!.on('data', (d) => (stderr += d));
    p.on('error', (e) => resolve({ code: -1, stderr: String(e) }));
    p.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

function canConnect(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** PIDs of the master's children (its workers), read from /proc. */
async function workerPids(masterPid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === masterPid && fields[0] !== 'Z') out.push(Number(name));
    } catch {
      // the process went away while we looked
    }
  }
  return out;
}

async function startOnce(opts: StartNginxOptions, port: number): Promise<NginxHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-nginx-'));
  for (const d of ['logs', 'conf', 'tmp']) await mkdir(join(dir, d), { recursive: true });
  const confPath = join(dir, 'conf', 'nginx.conf');
  const errorLogPath = join(dir, 'logs', 'error.log');
  await writeFile(confPath, renderConfig(dir, port, opts));
  const base = ['-p', dir, '-c', confPath, '-e', errorLogPath];
  if (opts.runAs) {
    await chmod(dir, 0o755);
    for (const p of [dir, ...['logs', 'conf', 'tmp', 'conf/nginx.conf'].map((d) => join(dir, d))]) {
      await chown(p, opts.runAs.uid, opts.runAs.gid);
    }
  }

  const child: ChildProcess = spawn(NGINX_BIN, base, {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    ...opts.runAs,
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let exited = false;
  const exitedP = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      resolve();
    });
    child.on('error', (e) => {
      stderr += String(e);
      exited = true;
      resolve();
    });
  });
  const errorLog = () => readFile(errorLogPath, 'utf8').catch(() => '');
  // If the test process dies without stop(), do not leave a detached nginx behind.
  const killOnExit = () => {
    try {
      if (!exited && child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const forgetReaper = reapOnExit(killOnExit);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    forgetReaper();
    if (!exited && child.pid) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await Promise.race([exitedP, sleep(3000)]);
      if (!exited) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        await Promise.race([exitedP, sleep(2000)]);
      }
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) {
      const log = await errorLog();
      await stop();
      throw new Error(`nginx exited at startup: ${stderr.trim()} ${log.split('\n').slice(-5).join('\n')}`);
    }
    if ((await canConnect(port, '127.0.0.1')) && (!opts.ipv6 || (await canConnect(port, '::1')))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not accept connections on port ${port} within 10 s: ${stderr}`);
    }
    await sleep(25);
  }
  const masterPid = child.pid!;

  return {
    port,
    dir,
    confPath,
    pid: masterPid,
    command: [NGINX_BIN, ...base].join(' '),
    errorLog,
    stop,
    async test() {
      const r = await run([...base, '-t'], opts.runAs);
      return { ok: r.code === 0, stderr: r.stderr };
    },
    async writeConfig(o) {
      await writeFile(confPath, renderConfig(dir, port, { ...o, runAs: opts.runAs }));
    },
    async reload({ timeoutMs = 5000 } = {}) {
      const before = new Set(await workerPids(masterPid));
      const r = await run([...base, '-s', 'reload'], opts.runAs);
      if (r.code !== 0) throw new Error(`nginx -s reload failed: ${r.stderr.trim()}`);
      const until = Date.now() + timeoutMs;
      for (;;) {
        const now = await workerPids(masterPid);
        // New workers only start once the master has loaded the new config; old ones leave when drained.
        if (now.length > 0 && now.every((p) => !before.has(p))) return;
        if (exited) throw new Error(`nginx exited during reload: ${stderr}`);
        if (Date.now() > until) {
          const log = await errorLog();
          throw new Error(
            `nginx did not switch to the new configuration within ${timeoutMs} ms; error.log ends with:\n` +
              log.split('\n').slice(-5).join('\n'),
          );
        }
        await sleep(20);
      }
    },
  };
}

/** Starts nginx; retries on another port if a free port was taken in between (a race with other tests). */
export async function startNginx(opts: StartNginxOptions): Promise<NginxHandle> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = opts.port ?? (await freePort());
    try {
      return await startOnce(opts, port);
    } catch (e) {
      lastError = e;
      if (opts.port || !/Address already in use/i.test(String(e))) throw e;
    }
  }
  throw lastError;
}

/**
 * nginx serving `<live>/fullchain.pem` + `<live>/key.pem`, which start as a self-signed placeholder for `dnsName`,
 * as on a freshly installed server before the first deploy. Stopped when the test ends.
 */
export async function startNginxOnPlaceholder(
  t: TestContext,
  live: string,
  opts: { dnsName?: string } & Omit<StartNginxOptions, 'certPath' | 'keyPath'> = {},
): Promise<NginxHandle> {
  const { dnsName = 'web.test', ...nginxOpts } = opts;
  const placeholder = (await makeTestPki('ecdsa-p256', { dnsNames: [dnsName] })).bundle;
  const certPath = join(live, 'fullchain.pem');
  const keyPath = join(live, 'key.pem');
  await writeFile(certPath, placeholder.certPem + placeholder.chainPems.join(''));
  await writeFile(keyPath, placeholder.keyPem, { mode: 0o600 });
  if (nginxOpts.runAs)
    for (const f of [certPath, keyPath]) await chown(f, nginxOpts.runAs.uid, nginxOpts.runAs.gid);
  const nginx = await startNginx({ certPath, keyPath, ...nginxOpts });
  onCleanup(t, () => nginx.stop());
  return nginx;
}

/** SHA-256 (hex) of the leaf certificate a TLS server on 127.0.0.1:port serves for `servername` (not verified). */
export function servedFingerprint(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const raw = s.getPeerCertificate().raw;
      s.destroy();
      resolve(createHash('sha256').update(new X509Certificate(raw).raw).digest('hex'));
    });
    s.once('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
  });
}
