/**
 * What a parked long-polling agent costs one hub: one hub (own process, SQLite, HTTPS; bench/convergence-hub.ts),
 * agents added in steps (bench/convergence-agents.ts, 1,000 per process) until `--agents` (default 1000,2000,4000).
 * At each step, once every agent installed the first version and parked its long-poll: the hub's memoryUsage()
 * after a full GC (rss, heapUsed, external, arrayBuffers); then one renewal: the hub's CPU, its RSS peak (sampled
 * every 250 ms), and the connections, TLS handshakes (resumed or full) and requests the hub saw during it. Per
 * agent: the slope between steps. During the renewal the hub also samples its own memoryUsage() every 100 ms without
 * forcing a GC (the sample with the highest RSS, and each field's maximum), and reports memoryUsage() after a full
 * GC once the agents parked again. BENCH_HUB_FLAGS="--max-semi-space-size=4 ..." passes V8 flags to the hub.
 *
 *   npx tsx bench/run.ts parked-agents [--agents 1000,2000,4000] [--snapshot DIR --snapshot-at 2000]
 *
 * `--snapshot DIR`: a V8 heap snapshot of the hub with `--snapshot-at` agents parked (open it in Chrome DevTools).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubClient } from '../src/cli/client.ts';
import { loadavg } from './api.ts';
import {
  hubCpuMs,
  hubRssMb,
  prepareAgents,
  renewRound,
  startAgents,
  startHubProcess,
  stopAgents,
  type AgentProcess,
} from './convergence.ts';

const PER_PROCESS = 1000;

function ask<T>(child: ChildProcess, msg: Record<string, unknown>, key: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: Record<string, unknown>) => {
      if (!(key in m)) return;
      child.off('message', on);
      resolve(m[key] as T);
    };
    child.on('message', on);
    child.send(msg);
  });
}

interface Traffic {
  connections: number;
  handshakes: number;
  resumed: number;
  requests: number;
  open: number;
}

export async function run(args: string[]): Promise<void> {
  const flag = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : def;
  };
  const steps = flag('agents', '1000,2000,4000').split(',').map(Number);
  const snapshotDir = flag('snapshot', '');
  const snapshotAt = Number(flag('snapshot-at', '2000'));
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-bench-parked-'));
  const token = `cfa_bench_${randomBytes(16).toString('hex')}`;
  const { info, child } = await startHubProcess(join(dir, 'hub'), token);
  const procs: AgentProcess[] = [];
  const rows: Array<{ n: number; memory: NodeJS.MemoryUsage; rss: number }> = [];
  try {
    const admin = new HubClient({ hub: info.url, token, caPem: info.caPem });
    await admin.post('/api/v1/certificates', {
      name: 'shared',
      sans: ['shared.bench.test'],
      lifetimeDays: 30,
    });
    let current = (await admin.get<{ current?: { id: string } | null }>('/api/v1/certificates/shared'))
      .current!.id;
    const base = await ask<NodeJS.MemoryUsage>(child, { memory: true }, 'memory');
    rows.push({ n: 0, memory: base, rss: await hubRssMb(child.pid!) });
    say(`parked-agents: loadavg ${await loadavg()}; 0 agents: ${fmt(base)}`);
    let have = 0;
    for (const n of steps) {
      const prepared = await prepareAgents(admin, n - have, have);
      for (let i = 0; i < prepared.length; i += PER_PROCESS) {
        const batch = prepared.slice(i, i + PER_PROCESS);
        const [proc] = startAgents(batch, [info], { procs: 1, inline: true });
        procs.push(proc);
        await proc.wait((m) => m.installed === current);
      }
      have = n;
      await new Promise((r) => setTimeout(r, 3000)); // every long-poll parked
      const memory = await ask<NodeJS.MemoryUsage>(child, { memory: true }, 'memory');
      const rss = await hubRssMb(child.pid!);
      rows.push({ n, memory, rss });
      const t0 = await ask<Traffic>(child, { traffic: true }, 'traffic');
      say(`${n} agents parked: ${fmt(memory)}; open connections ${t0.open}`);
      if (snapshotDir && n === snapshotAt) {
        const file = await ask<string>(
          child,
          { heapSnapshot: join(snapshotDir, `hub-${n}.heapsnapshot`) },
          'heapSnapshot',
        );
        say(`  heap snapshot: ${file}`);
      }
      const cpu0 = await hubCpuMs(child);
      let peak = 0;
      const sampler = setInterval(
        () =>
          void hubRssMb(child.pid!).then(
            (mb) => (peak = Math.max(peak, mb)),
            () => undefined,
          ),
        250,
      );
      child.send({ sample: 'start' });
      const round = await renewRound(child, procs);
      clearInterval(sampler);
      const burst = await ask<{ atPeak: NodeJS.MemoryUsage; max: NodeJS.MemoryUsage }>(
        child,
        { sample: 'stop' },
        'sample',
      );
      const cpu = (await hubCpuMs(child)) - cpu0;
      const t1 = await ask<Traffic>(child, { traffic: true }, 'traffic');
      const per = (k: keyof Traffic) => ((t1[k] - t0[k]) / n).toFixed(2);
      say(
        `  renewal: all installed ${(round.fromCommit / 1000).toFixed(2)} s; hub CPU ${(cpu / 1000).toFixed(2)} s ` +
          `(${(cpu / n).toFixed(2)} ms per agent); per agent: ${per('requests')} requests, ` +
          `${per('connections')} connections, ${per('handshakes')} TLS handshakes (${per('resumed')} resumed); ` +
          `RSS peak during it ${peak.toFixed(0)} MB; loadavg ${await loadavg()}`,
      );
      say(
        `  at the RSS peak (100 ms samples, no forced GC): ${fmt(burst.atPeak)}, heapTotal ${mb(burst.atPeak.heapTotal)}`,
      );
      say(`  maxima during the renewal: ${fmt(burst.max)}, heapTotal ${mb(burst.max.heapTotal)}`);
      await new Promise((r) => setTimeout(r, 3000)); // every long-poll parked again
      say(
        `  after it, parked, after a full GC: ${fmt(await ask<NodeJS.MemoryUsage>(child, { memory: true }, 'memory'))}`,
      );
      current = (await admin.get<{ current?: { id: string } | null }>('/api/v1/certificates/shared')).current!
        .id;
    }
    for (let i = 1; i < rows.length; i++) {
      const a = rows[i - 1];
      const b = rows[i];
      const d = b.n - a.n;
      const kb = (x: number, y: number) => `${((y - x) / d / 1024).toFixed(1)}`;
      say(
        `slope ${a.n}→${b.n}: per agent rss ${kb(a.memory.rss, b.memory.rss)} KB, heapUsed ` +
          `${kb(a.memory.heapUsed, b.memory.heapUsed)} KB, external ${kb(a.memory.external, b.memory.external)} KB, ` +
          `arrayBuffers ${kb(a.memory.arrayBuffers, b.memory.arrayBuffers)} KB`,
      );
    }
  } finally {
    await stopAgents(procs);
    child.disconnect();
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

const mb = (x: number) => `${(x / 1048576).toFixed(1)} MB`;
const fmt = (m: NodeJS.MemoryUsage) =>
  `rss ${mb(m.rss)}, heapUsed ${mb(m.heapUsed)}, external ${mb(m.external)}, arrayBuffers ${mb(m.arrayBuffers)}`;
