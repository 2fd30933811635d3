/**
 * Convergence: N agents subscribed to one certificate; time from "new version committed" to "all N reported
 * installed". Real parts: one hub (own process, SQLite, HTTPS), N enrolled agent identities in separate agent
 * processes (bench/convergence-agents.ts), each agent with its own keep-alive HTTPS client, real signed long-polls,
 * real sealed bundles opened with each agent's X25519 key, real signed reports. Only the deployer is replaced (an
 * immediate `installed` report).
 *
 *   npm run bench -- convergence [--agents 100,1000] [--rounds 3] [--agent-procs 2] [--no-inline]
 *
 * `--no-inline`: agents fetch the bundle with a separate request (the protocol before bundles were inlined).
 * BENCH_HUB_PROF=DIR writes a V8 CPU profile of the hub process into DIR (open it in Chrome DevTools).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubClient } from '../src/cli/client.ts';
import { hubProcess } from './hub-bundle.ts';

export interface HubInfo {
  url: string;
  caPem: string;
}

const now = () => performance.timeOrigin + performance.now();

/**
 * A hub in its own process (bench/convergence-hub.ts, bundled as shipped: bench/hub-bundle.ts); on `databaseUrl`
 * (PostgreSQL) when given.
 */
export async function startHubProcess(
  dataDir: string,
  token: string,
  opts: { databaseUrl?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ info: HubInfo; child: ChildProcess }> {
  const hub = await hubProcess('convergence-hub');
  const child = fork(hub.module, [dataDir, token, ...(opts.databaseUrl ? [opts.databaseUrl] : [])], {
    execArgv: hub.execArgv,
    env: { ...process.env, ...hub.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const info = await new Promise<HubInfo>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{"url"'));
      if (line) resolve(JSON.parse(line) as HubInfo);
    });
    child.once('exit', (code) => reject(new Error(`hub exited with ${code}`)));
  });
  return { info, child };
}

export async function hubRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** Runs `fn` over items with at most `limit` in flight. */
export async function pool<T>(
  items: T[],
  limit: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

export interface AgentProcess {
  child: ChildProcess;
  messages: Array<Record<string, unknown>>;
  wait: (pred: (m: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
  /** Sends once the child listens. */
  send: (m: Record<string, unknown>) => void;
}

/** Forks one bench/convergence-agents.ts process; collects its IPC messages. */
export function forkAgents(): AgentProcess {
  const child = fork(join(import.meta.dirname, 'convergence-agents.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const messages: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  child.on('message', (m: Record<string, unknown>) => {
    if (m.error) process.stderr.write(`agents: ${String(m.error)}\n`);
    messages.push(m);
    for (const w of [...waiters]) w();
  });
  const wait = (pred: (m: Record<string, unknown>) => boolean) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = messages.find(pred);
        if (hit) {
          waiters.delete(check);
          resolve(hit);
        }
      };
      waiters.add(check);
      child.once('exit', (code) => reject(new Error(`agent process exited with ${code}`)));
      check();
    });
  const ready = wait((m) => m.ready === true);
  ready.catch(() => undefined); // never sent to: nothing to report
  // Only once the child listens (see convergence-agents.ts); a child that exits first fails the caller's own wait.
  const send = (m: Record<string, unknown>) =>
    void ready.then(
      () => child.send(m),
      () => undefined,
    );
  return { child, messages, wait, send };
}

export interface PreparedAgent {
  name: string;
  enrollToken: string;
  subscriptionId: string;
}

/**
 * N agent endpoints (`agent-<from + i>`) with an enrollment token each, all subscribed to the certificate `shared`.
 */
export async function prepareAgents(admin: HubClient, n: number, from = 0): Promise<PreparedAgent[]> {
  const prepared: PreparedAgent[] = [];
  await pool(
    Array.from({ length: n }, (_, i) => `agent-${from + i}`),
    16,
    async (name) => {
      await admin.post('/api/v1/endpoints', { name, kind: 'agent' });
      const { token: enrollToken } = await admin.post<{ token: string }>(
        `/api/v1/endpoints/${name}/enroll-token`,
        {},
      );
      const sub = await admin.post<{ id: string }>('/api/v1/subscriptions', {
        endpoint: name,
        certificate: 'shared',
        outputs: [],
      });
      prepared.push({ name, enrollToken, subscriptionId: sub.id });
    },
  );
  return prepared;
}

/** `procs` agent processes sharing the agents; process p talks to hub p (round robin over `hubs`). */
export function startAgents(
  prepared: PreparedAgent[],
  hubs: HubInfo[],
  opts: { procs: number; inline: boolean },
): AgentProcess[] {
  const per = Math.ceil(prepared.length / opts.procs);
  return Array.from({ length: opts.procs }, (_, p) => {
    const proc = forkAgents();
    const hub = hubs[p % hubs.length];
    proc.send({
      agents: prepared.slice(p * per, (p + 1) * per),
      url: hub.url,
      caPem: hub.caPem,
      inline: opts.inline,
    });
    return proc;
  });
}

/** One renewal in the hub process `hub`, timed until every agent of `procs` installed it. */
export async function renewRound(hub: ChildProcess, procs: AgentProcess[]) {
  const requested = now();
  const reply = await new Promise<{ committedAt: number; versionId: string }>((resolve, reject) => {
    hub.once('message', (m: { committedAt?: number; versionId?: string; error?: string }) =>
      m.error ? reject(new Error(m.error)) : resolve(m as { committedAt: number; versionId: string }),
    );
    hub.send({ renew: 'shared' });
  });
  const done = await Promise.all(procs.map((p) => p.wait((m) => m.installed === reply.versionId)));
  const last = (k: string) => Math.max(...done.map((m) => m[k] as number));
  return {
    fromRequest: last('at') - requested,
    fromCommit: last('at') - reply.committedAt,
    desired: last('desiredAt') - reply.committedAt,
    bundle: last('bundleAt') - reply.committedAt,
  };
}

export async function stopAgents(procs: AgentProcess[]): Promise<void> {
  for (const p of procs) {
    if (p.child.connected) p.child.send({ stop: true });
    if (p.child.exitCode === null) await new Promise((r) => p.child.once('exit', r));
  }
}

const loadavg = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');

export async function hubCpuMs(child: ChildProcess): Promise<number> {
  const m = await new Promise<{ cpu: NodeJS.CpuUsage }>((resolve) => {
    child.once('message', resolve);
    child.send({ cpu: true });
  });
  return (m.cpu.user + m.cpu.system) / 1000;
}

async function runOnce(n: number, rounds: number, opts: { procs: number; inline: boolean }) {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-bench-conv-'));
  const token = `cfa_bench_${randomBytes(16).toString('hex')}`;
  const { info, child } = await startHubProcess(join(dir, 'hub'), token);
  const procs: AgentProcess[] = [];
  try {
    const admin = new HubClient({ hub: info.url, token, caPem: info.caPem });
    await admin.post('/api/v1/certificates', {
      name: 'shared',
      sans: ['shared.bench.test'],
      lifetimeDays: 30,
    });
    const setupStarted = now();
    const prepared = await prepareAgents(admin, n);
    // Initial sync: every agent enrolls and installs the first version (connections warm, polls parked after).
    const initial = await admin.get<{ current?: { id: string } | null }>('/api/v1/certificates/shared');
    const firstVersion = initial.current?.id ?? '';
    if (!firstVersion) throw new Error('the certificate has no first version');
    procs.push(...startAgents(prepared, [info], opts));
    await Promise.all(procs.map((p) => p.wait((m) => m.enrolled !== undefined)));
    const setupMs = now() - setupStarted;
    const synced = now();
    await Promise.all(procs.map((p) => p.wait((m) => m.installed === firstVersion)));
    const initialMs = now() - synced;
    await new Promise((r) => setTimeout(r, 1000)); // let every agent park its long-poll

    const results: Array<{
      fromRequest: number;
      fromCommit: number;
      desired: number;
      bundle: number;
      hubCpuMs: number;
      load: string;
    }> = [];
    for (let r = 0; r < rounds; r++) {
      const load = await loadavg();
      const cpuBefore = await hubCpuMs(child);
      const round = await renewRound(child, procs);
      const hubCpu = (await hubCpuMs(child)) - cpuBefore;
      results.push({ ...round, hubCpuMs: hubCpu, load });
      await new Promise((r) => setTimeout(r, 1000));
    }
    const rss = await hubRssMb(child.pid!);
    return { n, setupMs, initialMs, results, rss };
  } finally {
    await stopAgents(procs);
    child.disconnect();
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<void> {
  const flag = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : def;
  };
  const sizes = flag('agents', '100,1000').split(',').map(Number);
  const rounds = Number(flag('rounds', '3'));
  const procs = Number(flag('agent-procs', '2'));
  const inline = !args.includes('--no-inline');
  process.stdout.write(
    `convergence: ${cpus().length} cores, ${cpus()[0]?.model}, node ${process.version}; ` +
      `${procs} agent processes, bundles ${inline ? 'inlined in the long-poll answer' : 'fetched separately'}\n`,
  );
  const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
  for (const n of sizes) {
    const r = await runOnce(n, rounds, { procs, inline });
    const sorted = r.results.map((x) => x.fromCommit).sort((a, b) => a - b);
    process.stdout.write(
      `N=${n}: setup ${(r.setupMs / 1000).toFixed(1)} s, initial sync ${s(r.initialMs)}; hub RSS ${r.rss.toFixed(0)} MB\n`,
    );
    for (const x of r.results) {
      process.stdout.write(
        `  from commit ${s(x.fromCommit)} (from renew request ${s(x.fromRequest)}); last desired +${s(x.desired)}, ` +
          `last bundle +${s(x.bundle)}; hub CPU ${(x.hubCpuMs / 1000).toFixed(2)} s; loadavg ${x.load}\n`,
      );
    }
    process.stdout.write(
      `  median ${s(sorted[Math.floor(sorted.length / 2)])}, worst ${s(sorted[sorted.length - 1])}\n`,
    );
  }
}
