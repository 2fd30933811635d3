/**
 * Convergence: N agents subscribed to one certificate; time from "new version committed" to "all N reported
 * installed". Real parts: one hub (own process, SQLite, HTTPS), N enrolled agent identities each with its own
 * keep-alive HTTPS client, real long-polls, real sealed-bundle fetches opened with each agent's X25519 key,
 * real signed reports. Only the deployer is replaced (an immediate `installed` report).
 *
 *   npm run bench -- convergence [--agents 100,1000] [--rounds 3]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentClient } from '../src/agent/agent-client.ts';
import { generateAgentKeys, publicKeysOf, type AgentKeys } from '../src/agent/agent-identity.ts';
import { openSealedKey } from '../src/agent/sealed-key.ts';
import { HubClient } from '../src/cli/client.ts';

interface HubInfo {
  url: string;
  caPem: string;
}

const now = () => performance.timeOrigin + performance.now();

async function startHubProcess(
  dataDir: string,
  token: string,
): Promise<{ info: HubInfo; child: ChildProcess }> {
  const child = fork(join(import.meta.dirname, 'convergence-hub.ts'), [dataDir, token], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const info = await new Promise<HubInfo>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as HubInfo);
    });
    child.once('exit', (code) => reject(new Error(`hub exited with ${code}`)));
  });
  return { info, child };
}

async function hubRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** Runs `fn` over items with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
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

interface BenchAgent {
  endpointId: string;
  subscriptionId: string;
  keys: AgentKeys;
  client: AgentClient;
  since: number;
  versionId?: string;
}

const phases = { desired: 0, bundle: 0 };

/** One agent's loop: long-poll; on a new version fetch + open the bundle, report `installed`. */
async function agentLoop(a: BenchAgent, signal: AbortSignal, onInstalled: (versionId: string) => void) {
  while (!signal.aborted) {
    let state;
    try {
      state = await a.client.desired(a.since, 25, { signal });
    } catch (e) {
      if (signal.aborted) return;
      throw e;
    }
    a.since = state.revision;
    const v = state.subscriptions[0]?.version;
    if (!v || v.id === a.versionId) continue;
    phases.desired = Math.max(phases.desired, now());
    const bundle = await a.client.bundle(v.id, { signal });
    phases.bundle = Math.max(phases.bundle, now());
    openSealedKey(bundle.sealedKey, a.keys.sealing, a.endpointId, v.id);
    await a.client.report(
      [
        {
          subscriptionId: a.subscriptionId,
          versionId: v.id,
          state: 'installed',
          at: new Date().toISOString(),
        },
      ],
      { signal },
    );
    a.versionId = v.id;
    onInstalled(v.id);
  }
}

async function runOnce(n: number, rounds: number) {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-bench-conv-'));
  const token = `cfa_bench_${randomBytes(16).toString('hex')}`;
  const { info, child } = await startHubProcess(join(dir, 'hub'), token);
  const abort = new AbortController();
  const agents: BenchAgent[] = [];
  try {
    const admin = new HubClient({ hub: info.url, token, caPem: info.caPem });
    await admin.post('/api/v1/certificates', {
      name: 'shared',
      sans: ['shared.bench.test'],
      lifetimeDays: 30,
    });
    const setupStarted = now();
    await pool(
      Array.from({ length: n }, (_, i) => `agent-${i}`),
      16,
      async (name) => {
        await admin.post('/api/v1/endpoints', { name, kind: 'agent' });
        const { token: enrollToken } = await admin.post<{ token: string }>(
          `/api/v1/endpoints/${name}/enroll-token`,
          {},
        );
        const keys = generateAgentKeys();
        const bootstrap = new AgentClient(info.url, info.caPem);
        const { endpointId } = await bootstrap.enroll({ token: enrollToken, ...publicKeysOf(keys) });
        bootstrap.close();
        const sub = await admin.post<{ id: string }>('/api/v1/subscriptions', {
          endpoint: name,
          certificate: 'shared',
          outputs: [],
        });
        agents.push({
          endpointId,
          subscriptionId: sub.id,
          keys,
          since: -1,
          client: new AgentClient(info.url, info.caPem, { endpointId, keys }, { maxSockets: 2 }),
        });
      },
    );
    const setupMs = now() - setupStarted;

    let installed = 0;
    let target = '';
    let resolveAll: (() => void) | undefined;
    const loops = agents.map((a) =>
      agentLoop(a, abort.signal, (versionId) => {
        if (versionId === target && ++installed === n) resolveAll?.();
      }).catch((e) => {
        if (!abort.signal.aborted) process.stderr.write(`agent loop failed: ${(e as Error).message}\n`);
      }),
    );
    // Initial sync: every agent installs the first version (connections warm, long-polls parked afterwards).
    const initial = (await admin.get<{ currentVersion?: { id: string } }>('/api/v1/certificates/shared')) as {
      currentVersion?: { id: string };
      current?: { id: string };
    };
    target = initial.currentVersion?.id ?? initial.current?.id ?? '';
    const synced = now();
    await waitUntil(() => agents.every((a) => a.versionId !== undefined), 120_000);
    const initialMs = now() - synced;
    await new Promise((r) => setTimeout(r, 500)); // let every agent park its long-poll

    const results: Array<{ fromRequest: number; fromCommit: number }> = [];
    for (let r = 0; r < rounds; r++) {
      installed = 0;
      const all = new Promise<void>((resolve) => (resolveAll = resolve));
      const requested = now();
      const reply = await new Promise<{ committedAt: number; versionId: string }>((resolve, reject) => {
        child.once('message', (m: { committedAt?: number; versionId?: string; error?: string }) =>
          m.error ? reject(new Error(m.error)) : resolve(m as { committedAt: number; versionId: string }),
        );
        child.send({ renew: 'shared' });
      });
      target = reply.versionId;
      // Agents may finish before the IPC answer arrives: count every install of the new version.
      installed = agents.filter((a) => a.versionId === target).length;
      if (installed < n) await all;
      const done = now();
      results.push({ fromRequest: done - requested, fromCommit: done - reply.committedAt });
      if (process.env.BENCH_PHASES) {
        process.stdout.write(
          `  last desired +${(phases.desired - reply.committedAt).toFixed(0)} ms, last bundle +${(phases.bundle - reply.committedAt).toFixed(0)} ms, all reported +${(done - reply.committedAt).toFixed(0)} ms\n`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const rss = await hubRssMb(child.pid!);
    abort.abort();
    await Promise.all(loops);
    return { n, setupMs, initialMs, results, rss };
  } finally {
    abort.abort();
    for (const a of agents) a.client.close();
    child.disconnect();
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitUntil(check: () => boolean, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function run(args: string[]): Promise<void> {
  const flag = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : def;
  };
  const sizes = flag('agents', '100,1000').split(',').map(Number);
  const rounds = Number(flag('rounds', '3'));
  process.stdout.write(`convergence: ${cpus().length} cores, ${cpus()[0]?.model}, node ${process.version}\n`);
  for (const n of sizes) {
    const r = await runOnce(n, rounds);
    const fmt = (xs: number[]) => xs.map((x) => `${(x / 1000).toFixed(3)} s`).join(', ');
    process.stdout.write(
      `N=${n}: setup ${(r.setupMs / 1000).toFixed(1)} s, initial sync ${(r.initialMs / 1000).toFixed(2)} s; ` +
        `renew → all installed: from commit ${fmt(r.results.map((x) => x.fromCommit))}; ` +
        `from renew request ${fmt(r.results.map((x) => x.fromRequest))}; hub RSS ${r.rss.toFixed(0)} MB\n`,
    );
  }
}
