/**
 * One renewal pushed to N SSH connector endpoints (default 200) by an in-process hub, against the sequential loop
 * of the certbot guide (for each host: `rsync` the four files, then `ssh host '<config test> && <reload>'`) on the
 * same machine in the same run; then the same renewal with one more endpoint that accepts TCP and never answers.
 *
 *   npm run bench -- push [--endpoints 200] [--concurrency 16] [--hung-timeout 5] [--rtt-ms N] [--keep] [--json]
 *                         [--no-write]
 *
 * One private sshd (test/helpers/sshd.ts: its own config and host key on a free loopback port, MaxStartups raised
 * since it stands in for N hosts) and N target directories, one per endpoint.
 * - certfleet: one deploy user; every endpoint has its own key in that user's authorized_keys, bound to the forced
 *   command of docs/connectors.md with a config file of its own (`allow` its directory, its `config_test` and
 *   `reload` lines): the documented recipe once per host. The hub pushes with its default connector settings
 *   (`--concurrency` = `connectors.concurrency`, default 16).
 * - peer: a second user with a plain key (a shell login): the forced command refuses rsync, and the peer has no
 *   least-privilege recipe anyway. OpenSSH with the host key pinned in a known_hosts file, no connection sharing.
 * Both arms run the same config test and reload per target directory D (cheap, so the transport is what is
 * measured): `test -s D/fullchain.pem -a -s D/privkey.pem` and `touch D/reloaded`. The endpoints have no verify or
 * probe target, so a deployment's final state is `reloaded` (`failed` / `rolled_back` count as failures). Times run
 * from the renewal call (the internal CA's issuance included) to each endpoint's final state; the peer's from the
 * loop's start (its files already rendered) to each host's `ssh` returning. Every target directory is checked
 * afterwards: the new fullchain in place and the reload marker written.
 * `--rtt-ms N`: both arms reach the sshd through a latency relay (bench/latency-relay.ts, a stand-in for network
 * latency: this kernel has no netem) that delays each direction by N/2 ms; it runs in a child process whose CPU is
 * reported apart (neither arm's cost). The hung host is not behind it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  rmdir,
  stat,
  writeFile,
} from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HubClient } from '../src/cli/client.ts';
import { createLogger } from '../src/core/log.ts';
import type { CertificateVersion } from '../src/core/types.ts';
import { hubConfigSchema } from '../src/hub/hub-config.ts';
import { startHub, type RunningHub } from '../src/hub/hub.ts';
import { runLastFirst, type Cleanup } from '../test/helpers/cleanup.ts';
import { startSshd, type TestSshd } from '../test/helpers/sshd.ts';
import { startSilentServer } from '../test/helpers/tls-servers.ts';
import { loadavg, pct } from './api.ts';
import { pool } from './convergence.ts';
import { forkLatencyRelay, type LatencyRelayProcess } from './latency-relay.ts';
import { writeResultsSection } from './results-section.ts';

const CERT = 'push';
/** certbot's live/ files. */
const FILES = [
  { name: 'cert.pem', format: 'cert', mode: '0644' },
  { name: 'chain.pem', format: 'chain', mode: '0644' },
  { name: 'fullchain.pem', format: 'fullchain', mode: '0644' },
  { name: 'privkey.pem', format: 'key', mode: '0600' },
];
const FINAL = new Set(['reloaded', 'verified', 'failed', 'rolled_back']);
const configTest = (d: string) => `test -s ${d}/fullchain.pem -a -s ${d}/privkey.pem`;
const reload = (d: string) => `touch ${d}/reloaded`;

const num = (args: string[], name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const pad = (i: number) => String(i).padStart(3, '0');
const s = (ms: number) => (ms / 1000).toFixed(2);

function exec(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, (err, _out, stderr) =>
      err ? reject(new Error(`${cmd} failed: ${stderr.trim() || err.message}`)) : resolve(),
    ),
  );
}

/** CPU seconds of this process (hub, bench, the peer's reaped ssh/rsync) and of sshd with all it started. */
interface Cpu {
  local: number;
  sshd: number;
  /** The latency relay's process (0 without --rtt-ms). */
  relay: number;
}

/** utime + stime + cutime + cstime of a process, in seconds (/proc/PID/stat). */
async function procCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields.slice(11, 15).reduce((a, f) => a + Number(f), 0) / 100; // USER_HZ
}

const CPUACCT = '/sys/fs/cgroup/cpuacct';

/**
 * sshd's CPU, sessions and forced commands included. /proc's cutime misses them (sshd's session processes are
 * not all reaped by the listener), so sshd goes into a cpuacct cgroup of its own when the machine has one
 * (cgroup v1, root): every process it starts is counted there. Else /proc (a lower bound).
 */
async function sshdCpu(
  pid: number,
  cleanups: Cleanup[],
): Promise<{ read: () => Promise<number>; how: string }> {
  const dir = join(CPUACCT, `certfleet-bench-push-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(dir);
  } catch {
    return {
      read: () => procCpuSeconds(pid),
      how: 'sshd: /proc cutime (no cpuacct cgroup; misses sessions)',
    };
  }
  cleanups.push(async () => {
    // Whatever is left goes back to the root group, then the group goes.
    const left = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean);
    for (const p of left) await writeFile(join(CPUACCT, 'cgroup.procs'), p).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
  });
  await writeFile(join(dir, 'cgroup.procs'), String(pid));
  return {
    read: async () => Number(await readFile(join(dir, 'cpuacct.usage'), 'utf8')) / 1e9,
    how: 'sshd: a cpuacct cgroup (sessions and forced commands included)',
  };
}

const cpuSince = (a: Cpu, b: Cpu): Cpu => ({
  local: b.local - a.local,
  sshd: b.sshd - a.sshd,
  relay: b.relay - a.relay,
});

/** When each deployment reached a final state (performance.now()), from the store's post-commit events. */
class FinalStates {
  private readonly at = new Map<string, { state: string; ms: number; detail?: Record<string, unknown> }>();
  readonly off: () => void;

  constructor(hub: RunningHub) {
    this.off = hub.ctx.store.events.on('deployment.transitioned', ({ deployment: d }) => {
      if (FINAL.has(d.state))
        this.at.set(`${d.versionId}/${d.subscriptionId}`, {
          state: d.state,
          ms: performance.now(),
          ...(d.detail ? { detail: d.detail } : {}),
        });
    });
  }

  async waitFor(versionId: string, subs: string[], timeoutMs: number) {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const got = subs.map((id) => this.at.get(`${versionId}/${id}`));
      if (got.every(Boolean))
        return got as Array<{ state: string; ms: number; detail?: Record<string, unknown> }>;
      if (performance.now() > deadline) {
        throw new Error(`${got.filter((g) => !g).length} of ${subs.length} deployments not final in time`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

interface Arm {
  arm: string;
  endpoints: number;
  ok: number;
  totalMs: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds of everything the arm ran (see Cpu). */
  cpu: Cpu;
  load: string;
}

function summary(arm: string, times: number[], ok: number, cpu: Cpu, load: string): Arm {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    arm,
    endpoints: times.length,
    ok,
    totalMs: sorted[sorted.length - 1],
    p50Ms: pct(sorted, 50),
    p99Ms: pct(sorted, 99),
    cpu,
    load,
  };
}

async function ownedDir(path: string, user: { uid: number; gid: number }): Promise<string> {
  await mkdir(path, { recursive: true, mode: 0o755 });
  await chown(path, user.uid, user.gid);
  return path;
}

/** Checks a target directory after a round: the expected fullchain in place and the reload marker newer than `since`. */
async function landed(dir: string, fullchain: string, since: number): Promise<boolean> {
  const [pem, marker] = await Promise.all([
    readFile(join(dir, 'fullchain.pem'), 'utf8').catch(() => ''),
    stat(join(dir, 'reloaded')).catch(() => undefined),
  ]);
  return pem === fullchain && !!marker && marker.mtimeMs >= since - 1000;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One renewal; per subscription the time from the renewal call to its final state. */
async function renewal(hub: RunningHub, finals: FinalStates, subs: string[], cpuNow: () => Promise<Cpu>) {
  await hub.connectors.idle();
  await sleep(1000); // sshd reaps the sessions of what ran before
  const cpu0 = await cpuNow();
  const load = await loadavg();
  const wall = Date.now();
  const t0 = performance.now();
  const version = await hub.renewal.renewNow(CERT, 'admin:bench');
  const got = await finals.waitFor(version.id, subs, 30 * 60_000);
  await hub.connectors.idle();
  const loadAfter = await loadavg();
  await sleep(1000);
  return {
    version,
    wall,
    load: `${load} → ${loadAfter}`,
    cpu: cpuSince(cpu0, await cpuNow()),
    got: got.map((g) => ({ ...g, ms: g.ms - t0 })),
  };
}

export async function run(args: string[]): Promise<void> {
  const n = num(args, 'endpoints', 200);
  const concurrency = num(args, 'concurrency', 16);
  const hungTimeoutS = num(args, 'hung-timeout', 5);
  const rttMs = args.includes('--rtt-ms') ? num(args, 'rtt-ms', 0) : undefined;
  const keep = args.includes('--keep');
  const json = args.includes('--json');
  const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);

  const cleanups: Cleanup[] = [];
  const cleanUp = () => runLastFirst(cleanups);
  const onSignal = () => void cleanUp().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const root = await mkdtemp(join(tmpdir(), 'certfleet-bench-push-'));
    if (!keep) cleanups.push(() => rm(root, { recursive: true, force: true }));
    await chmod(root, 0o755); // the deploy users reach their directories through it

    say(`# setting up: sshd, 2 users, ${n} endpoint keys and target directories, hub (${root})`);
    const sshd: TestSshd = await startSshd({ shellUser: true, maxStartups: Math.max(2 * concurrency, 100) });
    cleanups.push(() => sshd.stop());
    const shell = sshd.shell!;
    const sshdCpuOf = await sshdCpu(sshd.pid, cleanups);
    let relay: LatencyRelayProcess | undefined;
    if (rttMs !== undefined) {
      relay = await forkLatencyRelay({ targetPort: sshd.port, rttMs });
      cleanups.push(() => relay!.close());
      say(`# latency relay (stand-in for network latency): port ${relay.port} → sshd, RTT ${rttMs} ms`);
    }
    /** The port both arms dial: sshd's, or the relay's in front of it. */
    const sshPort = relay?.port ?? sshd.port;
    const cpuNow = async (): Promise<Cpu> => ({
      local: await procCpuSeconds(process.pid),
      sshd: await sshdCpuOf.read(),
      relay: relay ? await procCpuSeconds(relay.pid) : 0,
    });

    const token = `cfa_bench_${randomBytes(16).toString('hex')}`;
    const hubLog = createWriteStream(join(root, 'hub.log'));
    const hub = await startHub({
      dataDir: join(root, 'hub'),
      listen: '127.0.0.1:0',
      config: hubConfigSchema.parse({
        planner: { enabled: false },
        probes: { enabled: false },
        connectors: { concurrency },
      }),
      logger: createLogger({ level: 'warn', destination: hubLog }),
      env: { CERTFLEET_ADMIN_TOKEN: token },
    });
    cleanups.push(() => new Promise<void>((r) => hubLog.end(r)));
    cleanups.push(() => hub.close());
    const client = new HubClient({ hub: hub.url, token, caPem: hub.caPem });
    const finals = new FinalStates(hub);
    cleanups.push(finals.off);

    await client.post('/api/v1/certificates', { name: CERT, sans: ['push.bench.test'], lifetimeDays: 30 });
    const certId = (await hub.ctx.store.getCertificate(CERT))!.id;
    const cfDirs: string[] = [];
    const peerDirs: string[] = [];
    const subs: string[] = [];
    const addEndpoint = async (
      name: string,
      ssh: { port: number; privateKeyPem: string; connectTimeoutSeconds?: number },
      dir: string,
    ): Promise<string> => {
      await client.post('/api/v1/endpoints', { name, kind: 'connector', probeTargets: [] });
      await client.put(`/api/v1/endpoints/${name}/connector`, {
        kind: 'ssh',
        host: '127.0.0.1',
        port: ssh.port,
        user: sshd.user,
        privateKey: ssh.privateKeyPem,
        hostKeyFingerprint: sshd.hostKeyFingerprint,
        ...(ssh.connectTimeoutSeconds ? { connectTimeoutSeconds: ssh.connectTimeoutSeconds } : {}),
      });
      const sub = await client.post<{ id: string }>('/api/v1/subscriptions', {
        endpoint: name,
        certificate: CERT,
        outputs: FILES.map((f) => ({ path: join(dir, f.name), format: f.format, mode: f.mode })),
        configTest: configTest(dir),
        reload: reload(dir),
      });
      return sub.id;
    };
    const tSetup = performance.now();
    await pool(
      Array.from({ length: n }, (_, i) => i),
      4,
      async (i) => {
        const key = await sshd.addForcedKey();
        const dir = (cfDirs[i] = await ownedDir(join(root, 'certfleet', `t${pad(i)}`), sshd));
        peerDirs[i] = await ownedDir(join(root, 'peer', `t${pad(i)}`), shell);
        await key.writeForcedConfig({ allow: [dir], configTest: configTest(dir), reload: reload(dir) });
        // Subscribing deploys the current version (v1) at once: the "before" state of every target.
        subs[i] = await addEndpoint(
          `push-${pad(i)}`,
          { port: sshPort, privateKeyPem: key.privateKeyPem },
          dir,
        );
      },
    );
    const v1 = (await hub.ctx.store.currentVersion(certId))!;
    const first = await finals.waitFor(v1.id, subs, 30 * 60_000);
    const firstFailed = first.filter((f) => f.state !== 'reloaded');
    if (firstFailed.length) {
      throw new Error(
        `${firstFailed.length} first deployments ended ${firstFailed[0].state}: ${JSON.stringify(firstFailed[0].detail)}`,
      );
    }
    say(`# setup and first deployment to ${n} endpoints: ${s(performance.now() - tSetup)} s`);
    // The peer's targets hold the same old files (copied locally, not timed).
    await pool(peerDirs, 4, async (d) => {
      for (const f of FILES) {
        await copyFile(join(cfDirs[0], f.name), join(d, f.name));
        await chown(join(d, f.name), shell.uid, shell.gid);
      }
    });

    const fullchainOf = (v: CertificateVersion) => v.certPem + v.chainPem;
    const checkDirs = async (dirs: string[], v: CertificateVersion, since: number) => {
      let ok = 0;
      await pool(dirs, 8, async (d) => {
        if (await landed(d, fullchainOf(v), since)) ok++;
      });
      return ok;
    };

    // certfleet: one renewal to all N.
    say('# certfleet: renewal pushed to every endpoint');
    const cf = await renewal(hub, finals, subs, cpuNow);
    const cfOk = cf.got.filter((g) => g.state === 'reloaded').length;
    const cfLanded = await checkDirs(cfDirs, cf.version, cf.wall);
    const cfArm = summary(
      `certfleet (concurrency ${concurrency})`,
      cf.got.map((g) => g.ms),
      cfOk,
      cf.cpu,
      cf.load,
    );

    // peer: the new files as certbot left them in live/, then the loop.
    const live = await ownedDir(join(root, 'live'), { uid: 0, gid: 0 });
    for (const f of FILES) {
      await copyFile(join(cfDirs[0], f.name), join(live, f.name));
      await chmod(join(live, f.name), Number.parseInt(f.mode, 8));
    }
    const knownHosts = join(root, 'known_hosts');
    // The same host key, pinned under the port the peer dials (the relay's with --rtt-ms).
    const hostKey = sshd.knownHostsLine.slice(sshd.knownHostsLine.indexOf(' ') + 1);
    await writeFile(knownHosts, `[127.0.0.1]:${sshPort} ${hostKey}\n`);
    const sshArgs = [
      ...['-p', String(sshPort), '-i', shell.keyPath],
      ...['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`],
      ...['-o', 'LogLevel=ERROR'],
    ];
    say(`# peer: rsync + ssh to ${n} hosts, one after the other`);
    const peerCpu0 = await cpuNow();
    const peerLoad = await loadavg();
    const peerWall = Date.now();
    const peerTimes: number[] = [];
    let peerFailed = 0;
    const p0 = performance.now();
    for (const d of peerDirs) {
      try {
        await exec('rsync', [
          '-a',
          '-e',
          ['ssh', ...sshArgs].join(' '),
          ...FILES.map((f) => join(live, f.name)),
          `${shell.user}@127.0.0.1:${d}/`,
        ]);
        await exec('ssh', [...sshArgs, `${shell.user}@127.0.0.1`, `${configTest(d)} && ${reload(d)}`]);
      } catch (e) {
        if (peerFailed++ === 0) say(`# peer: first failure: ${(e as Error).message}`);
      }
      peerTimes.push(performance.now() - p0);
    }
    const peerLoadAfter = await loadavg();
    await sleep(1000);
    const peerArm = summary(
      'peer: rsync + ssh loop',
      peerTimes,
      n - peerFailed,
      cpuSince(peerCpu0, await cpuNow()),
      `${peerLoad} → ${peerLoadAfter}`,
    );
    const peerLanded = await checkDirs(peerDirs, cf.version, peerWall);

    // Hung host: one more endpoint whose "sshd" accepts TCP and never answers.
    const hung = await startSilentServer();
    cleanups.push(() => hung.close());
    const hungDir = await ownedDir(join(root, 'hung'), sshd);
    const hungSub = await addEndpoint(
      'push-hung',
      { port: hung.port, privateKeyPem: sshd.privateKeyPem, connectTimeoutSeconds: hungTimeoutS },
      hungDir,
    );
    // Its first attempt (the current version) fails after its timeout; then the measured renewal.
    await finals.waitFor(cf.version.id, [hungSub], 10 * 60_000);
    say(`# certfleet + 1 hung host (connect timeout ${hungTimeoutS} s): renewal`);
    const withHung = await renewal(hub, finals, [...subs, hungSub], cpuNow);
    const healthy = withHung.got.slice(0, n);
    const hungGot = withHung.got[n];
    const hungOk = healthy.filter((g) => g.state === 'reloaded').length;
    const hungLanded = await checkDirs(cfDirs, withHung.version, withHung.wall);
    const hungArm = summary(
      `certfleet + 1 hung host (${n} healthy)`,
      healthy.map((g) => g.ms),
      hungOk,
      withHung.cpu,
      withHung.load,
    );
    const hungTotalMs = Math.max(hungArm.totalMs, hungGot.ms);
    const addedMs = hungTotalMs - cfArm.totalMs;
    const ratio = peerArm.totalMs / cfArm.totalMs;

    const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
    const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const perEndpoint = (a: Arm, cpuS: number) => ((cpuS * 1000) / a.endpoints).toFixed(0);
    const row = (a: Arm, landedN: number, vs: string) =>
      `| ${a.arm} | ${a.endpoints} | ${a.ok} / ${landedN} | ${s(a.totalMs)} | ${s(a.p50Ms)} | ${s(a.p99Ms)} | ${vs} | ` +
      `${(a.cpu.local + a.cpu.sshd).toFixed(1)} (${perEndpoint(a, a.cpu.local + a.cpu.sshd)}: ` +
      `${perEndpoint(a, a.cpu.local)} + ${perEndpoint(a, a.cpu.sshd)}) | ` +
      (relay ? `${perEndpoint(a, a.cpu.relay)} | ` : '') +
      `${a.load} |`;
    const table = [
      '| arm | endpoints | final state ok / files + reload checked | total s | p50 s | p99 s | vs peer | CPU s (ms per endpoint: this process + sshd) | ' +
        (relay ? 'latency relay CPU ms per endpoint (neither arm) | ' : '') +
        'loadavg before → after |',
      `|---|---|---|---|---|---|---|---|${relay ? '---|' : ''}---|`,
      row(cfArm, cfLanded, `${ratio.toFixed(1)}×`),
      row(peerArm, peerLanded, '1.0×'),
      row(hungArm, hungLanded, `${(peerArm.totalMs / hungTotalMs).toFixed(1)}×`),
    ].join('\n');
    const hungLine =
      `Hung host (accepts TCP, never answers; connectTimeoutSeconds ${hungTimeoutS}): it ended ` +
      `\`${hungGot.state}\` (${String(hungGot.detail?.code ?? '')}) at ${s(hungGot.ms)} s; the ${n} others all ended ` +
      `\`reloaded\`: ${hungOk} of ${n}, last at ${s(hungArm.totalMs)} s (p99 ${s(hungArm.p99Ms)} s). Total ${s(hungTotalMs)} s ` +
      `vs ${s(cfArm.totalMs)} s without it: ${addedMs >= 0 ? '+' : '−'}${s(Math.abs(addedMs))} s, ` +
      `${addedMs <= hungTimeoutS * 1000 ? 'within' : 'MORE than'} its ${hungTimeoutS} s timeout.`;
    const met = ratio >= 20;
    const section = [
      '## push',
      '',
      `\`npm run bench -- push --endpoints ${n} --concurrency ${concurrency} --hung-timeout ${hungTimeoutS}` +
        `${relay ? ` --rtt-ms ${rttMs}` : ''}\` (bench/push.ts). ` +
        `Run ${date} on ${machine}; OpenSSH sshd and client of the OS, rsync.`,
      '',
      `One private sshd on loopback stands for ${n} hosts, one target directory each. certfleet: an in-process hub ` +
        `(SQLite) with ${n} ssh connector endpoints subscribed to one certificate (4 outputs: cert.pem, chain.pem, ` +
        `fullchain.pem, privkey.pem), each with its own key bound to the forced command of docs/connectors.md with ` +
        `its own config file (the documented recipe per host); one renewal (internal CA), timed from the renewal ` +
        `call to each deployment's final state. No verify or probe targets, so the final state is \`reloaded\`. ` +
        `Peer: the certbot guide's loop, one host after the other: \`rsync -a -e "ssh -p PORT -i KEY -o ` +
        `BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=..."\` of the four files, then ` +
        `\`ssh host '<config test> && <reload>'\`, as a second user with a plain key (the forced command refuses ` +
        `rsync; the peer has no least-privilege recipe). Config test and reload, the same in both arms, per target ` +
        `directory D: \`test -s D/fullchain.pem -a -s D/privkey.pem\` and \`touch D/reloaded\` (real commands, ` +
        `cheap, so the transport is what is measured). Afterwards every directory is checked: the new fullchain ` +
        `in place and the reload marker written. The machine was shared with other work: see the load averages. ` +
        `CPU: this process (the hub, the bench, the peer's ssh and rsync) + ${sshdCpuOf.how}.` +
        (relay
          ? ` Both arms reach the sshd through a latency relay (bench/latency-relay.ts, a stand-in for network ` +
            `latency: each chunk forwarded ${rttMs! / 2} ms late in each direction, RTT ${rttMs} ms), in a child ` +
            `process whose CPU is counted apart; the hung host is not behind it.`
          : ''),
      '',
      table,
      '',
      `**Target ≥ 20× faster than the sequential loop: ${met ? 'met' : 'not met'}** (${ratio.toFixed(1)}×; ` +
        `${s(cfArm.totalMs)} s vs ${s(peerArm.totalMs)} s, i.e. ${s(cfArm.totalMs / n)} s vs ${s(peerArm.totalMs / n)} s per host).`,
      '',
      hungLine,
      '',
    ].join('\n');
    if (json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            machine,
            date,
            endpoints: n,
            concurrency,
            ...(relay ? { rttMs } : {}),
            arms: [cfArm, peerArm, hungArm],
            landed: { certfleet: cfLanded, peer: peerLanded, withHung: hungLanded },
            ratio,
            hung: { state: hungGot.state, atMs: hungGot.ms, timeoutS: hungTimeoutS, addedMs },
            perEndpointMs: {
              certfleet: cf.got.map((g) => Math.round(g.ms)),
              peer: peerTimes.map(Math.round),
            },
          },
          null,
          2,
        )}\n`,
      );
    } else {
      say(`\n${section}`);
    }
    if (!args.includes('--no-write')) say(`written to ${await writeResultsSection(section)}`);
    if (keep) say(`# kept ${root} (sshd stopped, users removed)`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanUp();
  }
}
