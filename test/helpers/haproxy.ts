/**
 * A real HAProxy (Debian's /usr/sbin/haproxy) terminating TLS in front of `certfleet hub --no-tls`, as docs/ha.md
 * describes: one frontend per backend hub (`fronts`), each on 127.0.0.1:<free port> with the given certificate,
 * forwarding plain HTTP with `X-Forwarded-For` and `X-Forwarded-Proto: https`. Foreground (`-db`), one process,
 * its config in a temp dir; stopped with SIGTERM (SIGKILL after 5 s). Used by test/ha/tls-proxy.test.ts and by
 * `bench ha --front haproxy`.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Cleanup } from './cleanup.ts';
import { freePort } from './nginx.ts';
import { reapChild } from './process-reaper.ts';

export const HAPROXY_BIN = '/usr/sbin/haproxy';

const run = promisify(execFile);

export interface HaproxyTimeouts {
  /** `timeout client`, s: the client side's inactivity, also while a long-poll is held. Default 60. */
  client: number;
  /**
   * `timeout server`, s: longer than the agents' long-poll (25 s) plus the answer, shorter than the agents' own
   * timeout (long-poll + 20 s), so HAProxy closes before the agent gives up and the hub sees it. Default 40.
   */
  server: number;
  /** `timeout http-keep-alive`, s: an idle client connection between two requests. Default 60. */
  keepAlive: number;
}

export interface StartHaproxyOptions {
  /** PEM file with the certificate, its chain and its private key (HAProxy's `crt`). */
  pemPath: string;
  /** Backend hubs as `host:port` (plain HTTP); one frontend each, in order. */
  backends: string[];
  timeouts?: Partial<HaproxyTimeouts>;
  /** Global `maxconn`: connections the process accepts at once (default 1,000). */
  maxconn?: number;
}

export interface HaproxyHandle {
  /** `https://127.0.0.1:<port>` per backend, in order. */
  urls: string[];
  pid: number;
  confPath: string;
  /** What HAProxy wrote on stdout and stderr (alerts and warnings). */
  output: () => string;
  stop(): Promise<void>;
}

/** The config: the lines docs/ha.md shows (timeouts, forwardfor, X-Forwarded-Proto), one frontend per backend. */
export function haproxyConfig(o: {
  pemPath: string;
  backends: string[];
  ports: number[];
  timeouts: HaproxyTimeouts;
  maxconn: number;
}): string {
  const fronts = o.backends.map(
    (backend, i) => `
frontend hub${i + 1}
    bind 127.0.0.1:${o.ports[i]} ssl crt ${o.pemPath} alpn http/1.1
    http-request set-header X-Forwarded-Proto https
    default_backend hub${i + 1}

backend hub${i + 1}
    server hub${i + 1} ${backend}
`,
  );
  return `global
    maxconn ${o.maxconn}
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout http-request 10s
    timeout client ${o.timeouts.client}s
    timeout server ${o.timeouts.server}s
    timeout http-keep-alive ${o.timeouts.keepAlive}s
${fronts.join('')}`;
}

/** Starts HAProxy; `register` receives its stop and the removal of its directory (call them last-registered first). */
export async function startHaproxy(
  register: (fn: Cleanup) => void,
  opts: StartHaproxyOptions,
): Promise<HaproxyHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-haproxy-'));
  register(() => rm(dir, { recursive: true, force: true }));
  const ports: number[] = [];
  for (const _ of opts.backends) ports.push(await freePort());
  const confPath = join(dir, 'haproxy.cfg');
  await writeFile(
    confPath,
    haproxyConfig({
      pemPath: opts.pemPath,
      backends: opts.backends,
      ports,
      timeouts: { client: 60, server: 40, keepAlive: 60, ...opts.timeouts },
      maxconn: opts.maxconn ?? 1000,
    }),
  );
  await run(HAPROXY_BIN, ['-c', '-q', '-f', confPath]).catch((e: { stderr?: string }) => {
    throw new Error(`haproxy refused its config: ${e.stderr ?? String(e)}`);
  });
  const child = spawn(HAPROXY_BIN, ['-db', '-f', confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  reapChild(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && !child.signalCode) child.kill('SIGKILL');
  };
  register(stop);
  const deadline = Date.now() + 20_000;
  for (const port of ports) {
    while (!(await accepts(port))) {
      if (child.exitCode !== null) throw new Error(`haproxy exited early:\n${out}`);
      if (Date.now() > deadline) throw new Error(`haproxy did not listen on ${port}:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    urls: ports.map((p) => `https://127.0.0.1:${p}`),
    pid: child.pid!,
    confPath,
    output: () => out,
    stop,
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
