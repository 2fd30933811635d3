/**
 * Emergency mass reissue: N certificates issued through Pebble, each subscribed by one simulated agent; then
 * `emergency reissue --issuer pebble` (`--all` with several Pebbles) as a campaign, timed per stage from the hub's own progress (the numbers
 * `certfleet emergency status` shows): issued (a new version through Pebble, ARI `replaces` sent), delivered,
 * verified, campaign done. Real parts: an in-process hub (SQLite, HTTPS, its planner doing the issuing at its
 * configured concurrency), Pebble with PEBBLE_VA_ALWAYS_VALID (challenge validation not measured), agents in two
 * forked processes (bench/convergence-agents.ts: signed long-polls, sealed bundles opened with each agent's key).
 * Simulated: the deploy itself — each agent reports installed, reloaded and verified at once for every new version
 * (the agent's own verify stands in for a probe; no TLS server is probed).
 *
 * Pebble reuses a valid authorization for every order (PEBBLE_AUTHZREUSE=100, `--authz-reuse`): the setup
 * validated the names once, as a CA that keeps authorizations for 30 days would have. The figures go to the
 * `## emergency (latest run)` section of bench/RESULTS.md (the history stays in `## emergency`).
 *
 * Several Pebbles (`--pebbles K`, default 5), each its own issuer `pebble-1`…`pebble-K` with its own ACME account;
 * certificate i goes to issuer i mod K. Why: Debian's Pebble 2.4 deadlocks under load (seen after 887–4,200 orders
 * of one instance). `MemoryStore.FindValidAuthorization` (db/memorystore.go:261, called for every identifier of
 * every new-order, whatever PEBBLE_AUTHZREUSE is) holds the store's read lock while it scans every authorization and
 * read-locks each; the `Authz` handler (wfe/wfe.go:2027, POST-as-GET of an authorization) holds that
 * authorization's write lock while `validPOSTAsGET` asks the store's read lock (GetAccountByID); a writer queued on
 * the store lock (another new-order's AddAuthorization/AddOrder) blocks new readers (Go's RWMutex): a cycle. The scan
 * grows with every authorization, so the window for it does too. K instances: 1/K of the authorizations per scan
 * and 1/K of the concurrency per instance. (The campaign itself no longer calls `Authz`: an order Pebble answers
 * `ready`, its authorizations reused, is finalized without reading them; the setup's first orders must.)
 * A watchdog asks each Pebble's management `GET /cert-status-by-serial/1` (it takes the same store read lock)
 * every 5 s: three unanswered in a row stop the bench with a goroutine dump of the wedged Pebble in a file.
 *
 * The setup (first versions, endpoints, subscriptions, agents enrolled and verified) is not what is measured: it
 * runs `--setup-concurrency` HTTP requests at once (default 32; each first issuance mostly waits on Pebble's order
 * and the ACME client's polls), so a 10,000 fleet is ready in minutes. The agents then start as a fleet's agents do,
 * not in one instant: each agent process lets 16 of its agents at a time make their first exchange (connect, first
 * long-poll, first report), the others wait their turn; after it, every agent keeps its long-poll parked as usual
 * (started all at once, 2,000 agents' first requests failed with ETIMEDOUT and ECONNRESET and retried for
 * minutes on the loaded machine). The campaign is the product's own, unchanged.
 *
 *   npm run bench -- emergency [--certs 10000] [--concurrency 8] [--setup-concurrency 32] [--agent-procs 2]
 *     [--authz-reuse 100] [--pebbles 5] [--no-write]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { HubClient } from '../src/cli/client.ts';
import { createLogger } from '../src/core/log.ts';
import { hubConfigSchema } from '../src/hub/hub-config.ts';
import { startHub } from '../src/hub/hub.ts';
import { agentFor, rawRequest } from '../src/issuers/acme/transport.ts';
import { startPebble, type Pebble } from '../test/helpers/pebble.ts';
import { forkAgents, pool, type AgentProcess } from './convergence.ts';
import { cpuMsOf } from './proc-cpu.ts';
import { writeResultsSection } from './results-section.ts';

const flag = (args: string[], name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const now = () => performance.now();
const rand = (p: string) => `${p}-${randomBytes(5).toString('hex')}.example.test`;

export async function run(args: string[]): Promise<void> {
  const n = Number(flag(args, 'certs', '10000'));
  const concurrency = Number(flag(args, 'concurrency', '8'));
  const setupConcurrency = Number(flag(args, 'setup-concurrency', '32'));
  const procs = Number(flag(args, 'agent-procs', '2'));
  const authzReuse = Number(flag(args, 'authz-reuse', '100'));
  const k = Number(flag(args, 'pebbles', '5'));
  const loadavg = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  const loads = { setup: await loadavg(), campaign: '', end: '' };
  const pebbles = await Promise.all(
    Array.from({ length: k }, () => startPebble({ alwaysValid: true, authzReuse })),
  );
  const issuerOf = (i: number) => (k === 1 ? 'pebble' : `pebble-${(i % k) + 1}`);
  const dataDir = await mkdtemp(join(tmpdir(), 'certfleet-bench-emergency-'));
  const token = `cfa_bench_${randomBytes(12).toString('hex')}`;
  const hub = await startHub({
    dataDir,
    listen: '127.0.0.1:0',
    config: hubConfigSchema.parse({
      issuers: await Promise.all(
        pebbles.map(async (pebble, j) => ({
          name: issuerOf(j),
          kind: 'acme',
          directoryUrl: pebble.directoryUrl,
          termsOfServiceAgreed: true,
          caFile: await writeCa(dataDir, `pebble-${j + 1}`, pebble.caPem),
          solvers: [{ kind: 'http-01' }],
          // Pebble has no rate limits; ours would defer the 41st first issuance under example.test.
          rateLimits: {
            limits: { NewOrdersPerAccount: null, CertificatesPerDomain: null, CertificatesPerFQDNSet: null },
          },
        })),
      ),
      // PEBBLE_VA_ALWAYS_VALID: no Pebble asks this listener anything
      http01: { listen: `127.0.0.1:${pebbles[0].httpPort}` },
      planner: { intervalSeconds: 3600, concurrency },
    }),
    logger: createLogger({ level: 'error' }),
    env: { ...process.env, CERTFLEET_ADMIN_TOKEN: token },
  });
  const agents: AgentProcess[] = [];
  const log = (s: string) => process.stderr.write(`${new Date().toISOString()} ${s}\n`);
  const watchdog = watchPebbles(pebbles, log);
  // CPU seconds per process since the last mark: the hub (this process; the admin polling is a small part), Pebble
  // and the agent processes together.
  const cpuMarks: Array<{ stage: string; hub: number; pebble: number; agents: number }> = [];
  let lastCpu = { hub: 0, pebble: 0, agents: 0 };
  const markCpu = async (stage: string) => {
    const u = process.cpuUsage();
    const agentMs = (await Promise.all(agents.map((a) => cpuMsOf(a.child.pid!)))).reduce((x, y) => x + y, 0);
    const cur = {
      hub: (u.user + u.system) / 1e6,
      pebble: (await Promise.all(pebbles.map((p) => cpuMsOf(p.pid)))).reduce((x, y) => x + y, 0) / 1000,
      agents: agentMs / 1000,
    };
    cpuMarks.push({
      stage,
      hub: cur.hub - lastCpu.hub,
      pebble: cur.pebble - lastCpu.pebble,
      agents: cur.agents - lastCpu.agents,
    });
    lastCpu = cur;
  };
  await markCpu('start');
  try {
    const admin = new HubClient({ hub: hub.url, token, caPem: hub.caPem });
    // Setup (not timed as the campaign): N certificates with a first version, N agents, everything verified.
    let t = now();
    const prepared: Array<{ name: string; enrollToken: string; subscriptionId: string }> = [];
    let setupRetries = 0;
    await watchdog.race(
      pool(
        Array.from({ length: n }, (_, i) => i),
        setupConcurrency,
        async (i) => {
          // an answer Pebble did not give in 30 s fails that one create: asked again, as an operator would (the
          // hub resumes an order the first attempt left), counted in the results
          const spec = { name: `c${i}`, sans: [rand(`c${i}`)], issuer: issuerOf(i) };
          for (let attempt = 1; ; attempt++) {
            const failed = await admin.post('/api/v1/certificates', spec).then(
              () => undefined,
              (e: Error) => e,
            );
            if (!failed) break;
            if (attempt === 3) throw failed;
            setupRetries++;
            log(`setup: c${i} failed (${failed.message}); asking again`);
          }
          await admin.post('/api/v1/endpoints', { name: `a${i}`, kind: 'agent' });
          const { token: enrollToken } = await admin.post<{ token: string }>(
            `/api/v1/endpoints/a${i}/enroll-token`,
            {},
          );
          const sub = await admin.post<{ id: string }>('/api/v1/subscriptions', {
            endpoint: `a${i}`,
            certificate: `c${i}`,
            outputs: [],
          });
          prepared.push({ name: `a${i}`, enrollToken, subscriptionId: sub.id });
          if (prepared.length % 500 === 0) log(`setup: ${prepared.length}/${n} certificates issued`);
        },
      ),
    );
    const setupIssueS = (now() - t) / 1000;
    await markCpu('setup: first issuances');
    t = now();
    const per = Math.ceil(n / procs);
    for (let p = 0; p < procs; p++) {
      const proc = forkAgents();
      agents.push(proc);
      proc.send({
        agents: prepared.slice(p * per, (p + 1) * per),
        url: hub.url,
        caPem: hub.caPem,
        inline: true,
        states: ['installed', 'reloaded', 'verified'],
        firstSyncConcurrency: 16,
      });
    }
    await Promise.all(agents.map((p) => p.wait((m) => m.enrolled !== undefined)));
    const verifiedCount = async () => (await hub.ctx.store.listDeployments({ states: ['verified'] })).length;
    // a line every 10 s: a setup that stops here (seen once per few runs, cause unknown) shows where it stands.
    // Each count reads every verified deployment (38 ms at 2,000 on a loaded machine): looked at every 500 ms it
    // took a quarter of the hub's time in the first deploys, so the next look waits 4 × the last one's time.
    for (let verified = 0, said = now(); ;) {
      const asked = now();
      if ((verified = await verifiedCount()) >= n) break;
      watchdog.check();
      if (now() - said > 10_000) {
        log(`setup: ${verified}/${n} first deploys verified`);
        said = now();
      }
      await new Promise((r) => setTimeout(r, Math.max(500, 4 * (now() - asked))));
    }
    const setupDeployS = (now() - t) / 1000;
    log(`setup done: ${n} first versions verified`);
    await markCpu('setup: first deploys');

    // The campaign, as `certfleet emergency reissue --issuer pebble --yes` (`--all --yes` with several Pebbles)
    // starts it.
    loads.campaign = await loadavg();
    const t0 = now();
    let afterId = (await hub.ctx.store.listEvents({ limit: 1 }))[0]?.id ?? 0;
    let failedOrders = 0;
    let lastFailure = '';
    const started = await admin.post<{ campaign: { id: string }; plan: { estimatedSeconds: number } }>(
      '/api/v1/emergency/campaigns',
      k === 1 ? { issuer: 'pebble', reason: 'bench' } : { all: true, reason: 'bench' },
    );
    const startS = (now() - t0) / 1000;
    const id = started.campaign.id;
    const at: Record<string, number> = {};
    let last = '';
    for (;;) {
      watchdog.check();
      const asked = now();
      const v = await admin.get<{
        campaign: { state: string };
        progress: {
          issued: number;
          issueFailing: number;
          delivered: number;
          verified: number;
          failed: number;
        };
      }>(`/api/v1/emergency/campaigns/${id}`);
      const p = v.progress;
      for (const stage of ['issued', 'delivered', 'verified'] as const)
        if (p[stage] >= n && at[stage] === undefined) at[stage] = (now() - t0) / 1000;
      // Failed orders since the start, and the last one's error: a stall shows its cause.
      for (;;) {
        const page = await hub.ctx.store.listEvents({ kind: 'version.issue_failed', afterId, limit: 1000 });
        if (page.length === 0) break;
        failedOrders += page.length;
        afterId = page[page.length - 1].id;
        lastFailure = JSON.stringify(page[page.length - 1].data).slice(0, 200);
      }
      const lastError = lastFailure ? ` (last: ${lastFailure})` : '';
      const line =
        `issued ${p.issued} (failing ${p.issueFailing}; failed orders ${failedOrders}${lastError}) ` +
        `delivered ${p.delivered} verified ${p.verified} failed ${p.failed}`;
      if (line !== last) log((last = line));
      if (v.campaign.state === 'done') {
        at.done = (now() - t0) / 1000;
        break;
      }
      // Each look computes the campaign's progress over the whole fleet: look at most a fifth of the time.
      await new Promise((r) => setTimeout(r, Math.max(1000, 4 * (now() - asked))));
    }
    await markCpu('campaign');
    loads.end = await loadavg();
    const rate = (s: number) => ((n / s) * 60).toFixed(0);
    const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
    const section = [
      '## emergency (latest run)',
      '',
      `Run ${new Date().toISOString().slice(0, 16)}Z on ${machine}; loadavg before the setup ${loads.setup}, before the campaign ${loads.campaign}, at its end ${loads.end}.`,
      `Command: \`npm run bench -- emergency --certs ${n} --concurrency ${concurrency} --setup-concurrency ${setupConcurrency} --authz-reuse ${authzReuse} --pebbles ${k}\`. ${k === 1 ? 'One Pebble' : `${k} Pebbles, one issuer (and ACME account) each, certificates spread round-robin, the campaign \`--all\``} (PEBBLE_VA_ALWAYS_VALID, PEBBLE_VA_NOSLEEP, PEBBLE_AUTHZREUSE=${authzReuse}), an in-process hub (SQLite, HTTPS; the planner issues at concurrency ${concurrency}), ${n} simulated agents in ${procs} processes (bench/convergence-agents.ts), one certificate each.`,
      'Simulated: the deploy. Each agent reports installed, reloaded and verified at once when it has the new version (its own verify stands in for a probe; no TLS endpoint is probed). Issuance (ACME orders with ARI `replaces`, through Pebble), the campaign, the planner, long-poll wake-ups, sealed bundles and signed reports are real.',
      '',
      `Setup (not part of the campaign): ${n} first issuances + endpoints in ${setupIssueS.toFixed(0)} s (${rate(setupIssueS)} per minute), first deploys verified in ${setupDeployS.toFixed(0)} s; ${setupRetries} first issuances asked again after a failure. Starting the campaign (selection, plan, one commit marking ${n} certificates): ${startS.toFixed(1)} s; the plan estimated ${started.plan.estimatedSeconds} s of issuing.`,
      '',
      '| CPU seconds | hub (bench process) | Pebble | agent processes |',
      '|---|---|---|---|',
      ...cpuMarks
        .slice(1)
        .map((m) => `| ${m.stage} | ${m.hub.toFixed(0)} | ${m.pebble.toFixed(0)} | ${m.agents.toFixed(0)} |`),
      '',
      '| stage (all N reached) | after start | rate (per minute, over the whole campaign so far) |',
      '|---|---|---|',
      `| issued (new version from Pebble) | ${at.issued.toFixed(0)} s | ${rate(at.issued)} |`,
      `| delivered (agents fetched it) | ${at.delivered.toFixed(0)} s | ${rate(at.delivered)} |`,
      `| verified | ${at.verified.toFixed(0)} s | ${rate(at.verified)} |`,
      `| campaign done | ${at.done.toFixed(0)} s | ${rate(at.done)} |`,
      '',
    ].join('\n');
    process.stdout.write(`${section}\n`);
    if (!args.includes('--no-write')) log(`wrote ${await writeResultsSection(section)}`);
  } finally {
    watchdog.stop();
    for (const a of agents) {
      a.child.send({ stop: true });
    }
    // a wedged Pebble is stopped first: the hub's orders waiting on it fail at once instead of after 30 s
    await Promise.all(pebbles.map((p) => p.stop()));
    await hub.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Asks each Pebble's management `GET /cert-status-by-serial/1` every 5 s (it takes the store's read lock, as every
 * signed request does; an unknown serial answers 404 at once). Three unanswered in a row: that Pebble is wedged by
 * the lock cycle in the file header; its goroutine dump goes to a file, `check()` and `race()` throw from then on.
 */
function watchPebbles(pebbles: Pebble[], log: (s: string) => void) {
  let failure: Error | undefined;
  let fail: (e: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {}); // observed through race() and check()
  const misses = pebbles.map(() => 0);
  const agents = pebbles.map((p) => agentFor(p.caPem));
  const timer = setInterval(() => {
    pebbles.forEach(async (p, j) => {
      const ok = await rawRequest(`${p.managementUrl}/cert-status-by-serial/1`, {
        agent: agents[j],
        timeoutMs: 5000,
      }).then(
        () => true,
        () => false,
      );
      misses[j] = ok ? 0 : misses[j] + 1;
      if (misses[j] < 3 || failure) return;
      failure = new Error(
        `Pebble ${j + 1} of ${pebbles.length} is wedged: its store lock answered nothing for 15 s (Pebble 2.4's lock ` +
          'cycle, db/memorystore.go:261 FindValidAuthorization × wfe/wfe.go:2027 Authz; see bench/emergency.ts); ' +
          'every order to it waits. Run with more --pebbles or a lower --setup-concurrency.',
      );
      const path = join(tmpdir(), `certfleet-pebble-wedge-${Date.now()}.txt`);
      await writeFile(path, await p.goroutineDump()).catch(() => {});
      failure.message += ` Goroutine dump: ${path}`;
      log(failure.message);
      fail(failure);
    });
  }, 5000);
  return {
    check() {
      if (failure) throw failure;
    },
    race<T>(p: Promise<T>): Promise<T> {
      p.catch(() => {}); // after a wedge the phase's own failure no longer matters
      return Promise.race([p, failed]);
    },
    stop() {
      clearInterval(timer);
      for (const a of agents) a?.destroy();
    },
  };
}

async function writeCa(dir: string, name: string, pem: string): Promise<string> {
  const path = join(dir, `${name}-ca.pem`);
  await writeFile(path, pem);
  return path;
}
