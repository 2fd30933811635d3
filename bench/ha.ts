/**
 * Several hubs over one PostgreSQL (issue 14): a private PostgreSQL cluster (test/helpers/postgres.ts), 2 real
 * hubs in their own processes on one database (bench/convergence-hub.ts), N long-polling agents in 2 processes
 * (bench/convergence-agents.ts), agent process p on hub p. Per round one renewal, issued by each hub in turn:
 * time from its commit until all N agents installed it (the other hub's agents hear of it through LISTEN/NOTIFY).
 * Then, with the agents still parked in their long-polls, list pages at `--clients` concurrent clients on each hub
 * (bench/api.ts's load generator). Each hub's RSS is sampled every 0.5 s throughout; the maximum is reported.
 *
 *   npm run bench -- ha [--agents 1000] [--agent-procs 2] [--rounds 3] [--clients 50] [--requests 400] [--no-write]
 *                       [--front haproxy [--proxy-timeout-server 40]]
 *
 * `--front haproxy`: the topology of docs/ha.md "TLS at the load balancer": the hubs serve plain HTTP (`--no-tls`)
 * and one HAProxy process per hub (test/helpers/haproxy.ts; one process for both would need about 2 × 10,000 file
 * descriptors at 10,000 agents, this machine's hard limit) terminates TLS, its certificate from a throwaway CA that
 * the agents and the list-page clients trust; agents, list-page clients and the admin client all go through it.
 * Each HAProxy's RSS is sampled and reported beside its hub's.
 *
 * CPU per round is charged to each process from /proc (hub 1, hub 2, PostgreSQL with its backends, each agent
 * process). BENCH_HUB_PROF=DIR writes a V8 CPU profile of hub 1 over each round into DIR (hub1-round<n>.cpuprofile;
 * startHubProcess adds whole-run profiles of both hubs there too). Stopped by SIGTERM or
 * SIGINT (a `timeout`), the bench prints what it measured so far and stops the hubs, agents and the cluster.
 *
 * Targets (issue 14): renewal → all installed ≤ 5 s at 10,000 agents; each hub ≤ 400 MB RSS; list pages p99 ≤ 50 ms
 * at 50 clients. Writes the `## ha` section of bench/RESULTS.md unless `--no-write`.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import type { PostgresCluster } from '../test/helpers/postgres.ts';
import { join } from 'node:path';
import { HubClient } from '../src/cli/client.ts';
import { startPostgres } from '../test/helpers/postgres.ts';
import { startHaproxy, type HaproxyHandle } from '../test/helpers/haproxy.ts';
import { makeLocalhostTls } from '../test/helpers/localhost-tls.ts';
import type { Cleanup } from '../test/helpers/cleanup.ts';
import { loadavg, measure } from './api.ts';
import {
  hubRssMb,
  prepareAgents,
  renewRound,
  startAgents,
  startHubProcess,
  stopAgents,
  type AgentProcess,
  type HubInfo,
} from './convergence.ts';
import { cpuMsOf, cpuMsWithChildren } from './proc-cpu.ts';
import { writeResultsSection } from './results-section.ts';

const ROUTES = ['/api/v1/endpoints', '/api/v1/subscriptions'];
const TARGET = { installedMs: 5000, rssMb: 400, p99Ms: 50 };

export async function run(args: string[]): Promise<void> {
  const flag = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : def;
  };
  const n = Number(flag('agents', '1000'));
  const procCount = Number(flag('agent-procs', '2'));
  const rounds = Number(flag('rounds', '3'));
  const clients = Number(flag('clients', '50'));
  const requests = Number(flag('requests', '400'));
  const front = flag('front', 'none');
  /** `--front haproxy` only: HAProxy's `timeout server` in seconds (default 40, as test/helpers/haproxy.ts). */
  const proxyTimeoutServer = Number(flag('proxy-timeout-server', '40'));
  if (front !== 'none' && front !== 'haproxy') throw new Error(`--front: haproxy or nothing, not ${front}`);
  const cpuModel =
    /model name\s*:\s*(.*)/.exec(await readFile('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model;
  const started = new Date().toISOString();
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(
    `ha: ${cpus().length} cores (${cpuModel}), node ${process.version}, ${started}; ${n} agents in ${procCount} ` +
      `processes over 2 hubs on one PostgreSQL${front === 'haproxy' ? ', TLS terminated by HAProxy in front of --no-tls hubs' : ''}; ` +
      `loadavg ${await loadavg()}`,
  );

  const cleanups: Cleanup[] = []; // run last-registered first: the cluster stops before its directory goes
  const hubs: Array<{ info: HubInfo; child: ChildProcess }> = [];
  let procs: AgentProcess[] = [];
  let cluster: PostgresCluster | undefined;
  const proxies: HaproxyHandle[] = [];
  const rss = [0, 0];
  const proxyRss = [0, 0];
  const sampler = setInterval(() => {
    hubs.forEach((h, i) => {
      if (h.child.exitCode === null)
        void hubRssMb(h.child.pid!).then(
          (mb) => (rss[i] = Math.max(rss[i], mb)),
          () => undefined,
        );
    });
    proxies.forEach((p, i) => {
      void hubRssMb(p.pid).then(
        (mb) => (proxyRss[i] = Math.max(proxyRss[i], mb)),
        () => undefined,
      );
    });
  }, 500);
  const proxyLine = () =>
    front === 'haproxy'
      ? `; HAProxy RSS max ${proxyRss.map((m, i) => `HAProxy ${i + 1} ${m.toFixed(0)} MB`).join(', ')}`
      : '';
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  // what was measured so far: printed at the end, or when a signal stops the run early
  let setupMs: number | undefined;
  const renewals: Array<{ hub: number; fromCommit: number; desired: number; load: string; cpu: RoundCpu }> =
    [];
  const pages: Array<{ hub: number; route: string; p50: number; p99: number; n: number; errors: number }> =
    [];
  const partial = () =>
    [
      `measured before the stop: setup ${setupMs === undefined ? 'unfinished' : s(setupMs)}; ` +
        `renewals ${renewals.map((r) => `${s(r.fromCommit)} (hub ${r.hub + 1})`).join(', ') || 'none'}; ` +
        `list p99 ${pages.map((p) => `hub ${p.hub + 1} ${p.route} ${p.p99.toFixed(1)} ms`).join(', ') || 'none'}; ` +
        `hub RSS max ${rss.map((m) => `${m.toFixed(0)} MB`).join(' / ')}${proxyLine()}`,
    ].join('\n');

  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      clearInterval(sampler);
      await stopAgents(procs);
      for (const h of hubs) {
        if (h.child.exitCode !== null) continue;
        const exited = new Promise((r) => h.child.once('exit', r));
        if (h.child.connected) h.child.disconnect();
        else h.child.kill('SIGTERM');
        await exited;
      }
      for (const fn of cleanups.reverse()) await fn();
    })());
  const onSignal = (signal: NodeJS.Signals) => {
    say(`ha: ${signal}: stopping early`);
    say(partial());
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    cluster = await startPostgres((fn) => cleanups.push(fn));
    const databaseUrl = await cluster.createDatabase();
    const dir = await mkdtemp(join(tmpdir(), 'certfleet-bench-ha-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const token = `cfa_bench_${randomBytes(16).toString('hex')}`;
    const env = {
      CERTFLEET_MASTER_KEY: randomBytes(32).toString('hex'),
      ...(front === 'haproxy' ? { CERTFLEET_TLS: 'off' } : {}),
    };
    // one after the other: the first creates the schema and the internal CA, the second finds them
    for (const i of [0, 1])
      hubs.push(await startHubProcess(join(dir, `hub${i}`), token, { databaseUrl, env }));
    // where agents and clients connect: each hub itself, or the HAProxy frontend in front of it
    let fronts: HubInfo[] = hubs.map((h) => h.info);
    if (front === 'haproxy') {
      const tlsDir = join(dir, 'front-tls');
      await mkdir(tlsDir);
      const tls = await makeLocalhostTls(tlsDir);
      const pemPath = join(tlsDir, 'front.pem');
      await writeFile(pemPath, tls.certPem + tls.keyPem, { mode: 0o600 });
      for (const h of hubs) {
        const proxy = await startHaproxy((fn) => cleanups.push(fn), {
          pemPath,
          backends: [new URL(h.info.url).host],
          maxconn: Math.ceil(n / 2) + 2 * clients + 1000,
          timeouts: { server: proxyTimeoutServer },
        });
        proxies.push(proxy);
        say(
          `HAProxy (pid ${proxy.pid}, timeout server ${proxyTimeoutServer} s) ${proxy.urls[0]} -> hub ${h.info.url}`,
        );
      }
      fronts = proxies.map((p) => ({ url: p.urls[0], caPem: tls.caPem }));
    }
    const admin = new HubClient({ hub: fronts[0].url, token, caPem: fronts[0].caPem });
    await admin.post('/api/v1/certificates', {
      name: 'shared',
      sans: ['shared.bench.test'],
      lifetimeDays: 30,
    });

    const setupStarted = performance.now();
    const prepared = await prepareAgents(admin, n);
    const initial = await admin.get<{ current?: { id: string } | null }>('/api/v1/certificates/shared');
    procs = startAgents(prepared, fronts, { procs: procCount, inline: true });
    await Promise.all(procs.map((p) => p.wait((m) => m.installed === initial.current?.id)));
    setupMs = performance.now() - setupStarted;
    say(`setup and initial sync: ${(setupMs / 1000).toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, 1000)); // let every agent park its long-poll

    const postmaster = Number(
      (await readFile(join(cluster.dir, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0],
    );
    const cpuNow = async (): Promise<RoundCpu> => ({
      hubs: await Promise.all(hubs.map((h) => cpuMsOf(h.child.pid!))),
      postgres: await cpuMsWithChildren(postmaster),
      agents: await Promise.all(procs.map((p) => cpuMsOf(p.child.pid!))),
      proxies: await Promise.all(proxies.map((p) => cpuMsOf(p.pid))),
    });
    const prof = process.env.BENCH_HUB_PROF;
    for (let r = 0; r < rounds; r++) {
      const load = await loadavg();
      const hub = r % 2;
      if (prof) await hubMessage(hubs[0].child, { profile: 'start' });
      const before = await cpuNow();
      const round = await renewRound(hubs[hub].child, procs);
      const after = await cpuNow();
      if (prof)
        await hubMessage(hubs[0].child, {
          profile: 'stop',
          file: join(prof, `hub1-round${r + 1}.cpuprofile`),
        });
      const cpu: RoundCpu = {
        hubs: after.hubs.map((v, i) => v - before.hubs[i]),
        postgres: after.postgres - before.postgres,
        agents: after.agents.map((v, i) => v - before.agents[i]),
        proxies: after.proxies.map((v, i) => v - before.proxies[i]),
      };
      renewals.push({ hub, fromCommit: round.fromCommit, desired: round.desired, load, cpu });
      say(
        `renewal ${r + 1} (issued by hub ${hub + 1}): all ${n} installed ${(round.fromCommit / 1000).toFixed(3)} s ` +
          `after its commit; last long-poll answered +${(round.desired / 1000).toFixed(3)} s; loadavg ${load}; ` +
          `CPU ${cpuLine(cpu, n)}`,
      );
      await new Promise((res) => setTimeout(res, 1000));
    }

    for (const [hub, info] of fronts.entries()) {
      for (const route of ROUTES) {
        const m = await measure(info.url, route, {
          limit: 100,
          concurrency: clients,
          requests,
          maxSeconds: 30,
          token,
          caPem: info.caPem,
          encoding: 'identity',
        });
        pages.push({ hub, route, p50: m.p50, p99: m.p99, n: m.n, errors: m.errors });
        say(
          `hub ${hub + 1} ${route} at ${clients} clients: p50 ${m.p50.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms ` +
            `(${m.n} pages${m.errors ? `, ${m.errors} errors` : ''}); loadavg ${await loadavg()}`,
        );
      }
    }
    await new Promise((r) => setTimeout(r, 600)); // a last RSS sample
    say(
      `hub RSS (max over the run): hub 1 ${rss[0].toFixed(0)} MB, hub 2 ${rss[1].toFixed(0)} MB${proxyLine()}`,
    );

    const sorted = renewals.map((r) => r.fromCommit).sort((a, b) => a - b);
    const worst = sorted[sorted.length - 1];
    const worstP99 = Math.max(...pages.map((p) => p.p99));
    const maxRss = Math.max(...rss);
    const met = (ok: boolean) => (ok ? 'met' : '**not met**');
    const section = [
      '## ha',
      '',
      `\`npm run bench -- ha --agents ${n}\` (bench/ha.ts): 2 hub processes on one private PostgreSQL cluster`,
      `(test/helpers/postgres.ts: fsync off), ${n} agents in ${procCount} processes, agent process p on hub p; a renewal`,
      'issued by each hub in turn, timed from its commit to the last `installed` report; list pages (limit 100) at',
      `${clients} clients on each hub with the agents parked; RSS of each hub sampled every 0.5 s.` +
        (front === 'haproxy'
          ? ' `--front haproxy`: the hubs serve plain HTTP (`--no-tls`) behind one HAProxy each, which terminates TLS' +
            ' for agents and list-page clients (its RSS in parentheses).'
          : ''),
      '',
      `Machine: ${cpus().length} cores (${cpuModel}), Node ${process.version}. Date: ${started}. Load average at`,
      `the start: ${renewals[0]?.load ?? ''} (the machine was shared with other work unless it says otherwise).`,
      '',
      '| agents | renewal → all installed, per round (issuing hub) | worst | hub RSS max (1 / 2) | list p99 at ' +
        `${clients} clients (endpoints / subscriptions; hub 1, hub 2) | loadavg per round |`,
      '|---|---|---|---|---|---|',
      `| ${n.toLocaleString('en')} | ${renewals.map((r) => `${s(r.fromCommit)} (${r.hub + 1})`).join(', ')} | ` +
        `${s(worst)} | ${rss.map((m) => `${m.toFixed(0)} MB`).join(' / ')}` +
        `${front === 'haproxy' ? ` (HAProxy ${proxyRss.map((m) => `${m.toFixed(0)} MB`).join(' / ')})` : ''} | ` +
        `${pages.map((p) => `${p.p99.toFixed(1)}`).join(' / ')} ms | ${renewals.map((r) => r.load).join('; ')} |`,
      '',
      `CPU per round: ${renewals.map((r) => cpuLine(r.cpu, n)).join('; ')}.`,
      '',
      `Targets: all installed ≤ 5 s: ${met(worst <= TARGET.installedMs)} (worst ${s(worst)}); each hub ≤ 400 MB:`,
      `${met(maxRss <= TARGET.rssMb)} (${maxRss.toFixed(0)} MB); list p99 ≤ 50 ms: ${met(worstP99 <= TARGET.p99Ms)}`,
      `(worst ${worstP99.toFixed(1)} ms).${n < 10_000 ? ' The issue targets 10,000 agents: this run had fewer.' : ''}`,
      '',
    ].join('\n');
    say(section);
    if (!args.includes('--no-write')) say(`written to ${await writeResultsSection(section)}`);
  } catch (e) {
    if (!stopping) say(partial()); // a signal's handler printed it already
    throw e;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await stopAll();
  }
}

/** CPU ms one round cost each process. */
interface RoundCpu {
  hubs: number[];
  postgres: number;
  agents: number[];
  /** Each HAProxy in front (`--front haproxy`), else none. */
  proxies: number[];
}

/** "hub 1 1.20 s, hub 2 …, postgres …, agents …; total … (… ms per agent)". */
function cpuLine(cpu: RoundCpu, n: number): string {
  const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
  const total = sum(cpu.hubs) + cpu.postgres + sum(cpu.agents) + sum(cpu.proxies);
  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return (
    `${cpu.hubs.map((v, i) => `hub ${i + 1} ${sec(v)}`).join(', ')}, postgres ${sec(cpu.postgres)}, ` +
    `agents ${cpu.agents.map(sec).join(' + ')}` +
    `${cpu.proxies.length ? `, HAProxy ${cpu.proxies.map(sec).join(' + ')}` : ''}; total ${sec(total)} (${(total / n).toFixed(2)} ms per agent)`
  );
}

/** Sends `msg` to a bench hub process and waits for its acknowledgement. */
function hubMessage(child: ChildProcess, msg: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve) => {
    child.once('message', resolve);
    child.send(msg);
  });
}
