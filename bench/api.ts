/**
 * API read paths at fleet size: N certificates (each with a real version) and N endpoints, each endpoint
 * subscribed to one certificate, with deployments in various states, agent contacts and probe results. Then a real
 * hub (own process, SQLite, HTTPS) answers the list routes and `GET /status`, one page per request, at
 * concurrency 1 and 50 over keep-alive connections; each client walks the pages by following `x-next-cursor`
 * (back to the first page at the end), so deep pages are measured as well as the first.
 *
 *   npm run bench -- api [--certs 10000] [--endpoints 10000] [--limit 100] [--concurrency 1,50]
 *                        [--requests 400] [--max-seconds 30] [--routes certificates,endpoints,...] [--keep DIR]
 *                        [--cache uncached,cached] [--encoding identity,gzip] [--live MS] [--live-writer hub|other]
 *                        [--client autocannon|node]
 *
 * `--live MS`: while a cached route is measured, the hub commits every MS ms what a hub of 10,000 agents commits
 * (their `last_seen_at` touches, batched: 500 endpoints per commit) through its own store, as a live fleet's
 * contacts are committed (agents talk to the hub): the hub's process runs the writer, started and stopped over IPC.
 * Such commits bump only `endpoints.last_seen_at` (src/store/write-generation.ts), so pages that do not show last
 * contact stay cached. `--live-writer other` is the worst case: another connection in the bench process commits the
 * touches, which the hub sees only as "the file changed" (SQLite's data_version), so every commit empties every
 * cached page. `0` (the default) measures a fleet at rest.
 *
 * `--cache cached` is the steady state of a running hub whose fleet did not change: before the timed requests of a
 * route, one client walks all its pages once (each page's first answer is a render, stored by the page cache); that
 * walk's own times are printed in a second table (the cost of the first visit of each page after a start or a
 * commit). `--cache uncached` renders every page of every request (the cost after each commit). `--requests`
 * (default 4,000) per row: the p99 is then the 40th slowest answer, not the 4th.
 *
 * `--encoding`: `gzip` asks as the CLI does (`accept-encoding: gzip`; the answer is decompressed before it counts),
 * `identity` as a client that sends no accept-encoding; the table's bytes are the bytes on the wire.
 * `--client`: who generates the load. `autocannon` (default; the fastify project's load generator: raw TLS sockets and
 * its own HTTP parser) times each answer from the request's write to its last byte; `node` is Node's https client,
 * which reads each answer whole and inflates gzip ones as the CLI does. On this 2-core machine the clients share the
 * cores with the hub, and Node's client costs more CPU per page than the hub answering it (the `client CPU` column),
 * so with it the p99 at 50 clients measures the client's saturation as much as the hub. The stall columns give the
 * longest event-loop delay and GC pause of each process during the row (bench/loop-stalls.ts).
 * `--keep DIR` writes the fleet into DIR once and reuses it on later runs; BENCH_HUB_PROF=DIR writes a V8 CPU
 * profile of the hub process into DIR.
 *
 * The data is written directly through the store (setup speed): a pool of 16 versions is issued by the internal
 * CA and their certificate, chain and sealed key are reused for every other certificate's version (each stored
 * row is a real version; 10,000 ECDSA issuances would only slow the setup). A hub that does not paginate (the code
 * before the fleet read model) answers every request with the whole list; `--max-seconds` bounds such runs.
 */
import autocannon from 'autocannon';
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:https';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createLogger } from '../src/core/log.ts';
import { CertificateService } from '../src/hub/certificate-service.ts';
import { openDataDir } from '../src/hub/data-dir.ts';
import { openHubContext } from '../src/hub/hub.ts';
import { systemClock } from '../src/core/clock.ts';
import type { NewVersion, ProbeResultRecord, Store } from '../src/store/store.ts';
import { watchStalls, type Stalls } from './loop-stalls.ts';

const POOL = 16;
const ROUTES: Record<string, string> = {
  certificates: '/api/v1/certificates',
  endpoints: '/api/v1/endpoints',
  subscriptions: '/api/v1/subscriptions',
  status: '/api/v1/status',
};

export const loadavg = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');

/** Writes the fleet into `dataDir` through the store, then closes it. */
export async function populate(dataDir: string, nCerts: number, nEndpoints: number): Promise<void> {
  const ctx = await openHubContext({ dataDir, logger: createLogger({ level: 'warn' }), env: {} });
  const { store } = ctx;
  try {
    const service = new CertificateService(ctx);
    const pool: NewVersion[] = [];
    for (let i = 0; i < POOL; i++) {
      const cert = await service.create(
        {
          name: `pool-${i}`,
          sans: [`pool-${i}.bench.test`],
          keyType: 'ecdsa-p256',
          issuer: 'internal',
          lifetimeDays: 30,
        },
        'bench',
      );
      const v = (await store.currentVersion(cert.id))!;
      const { serial, fingerprint, notBefore, notAfter, certPem, chainPem } = v;
      const sealedKey = (await store.sealedKeyOf(v.id))!;
      pool.push({
        serial,
        fingerprint,
        notBefore,
        notAfter,
        certPem,
        chainPem,
        sealedKey,
        issuer: 'internal',
      });
    }
    const certIds: string[] = [];
    for (let i = POOL; i < nCerts; i++) {
      const name = `cert-${String(i).padStart(5, '0')}`;
      const cert = await store.createCertificate(
        { name, sans: [`${name}.bench.test`], keyType: 'ecdsa-p256', issuer: 'internal', lifetimeDays: 30 },
        'bench',
      );
      // every 50th certificate has no version yet (waiting for the planner)
      if (i % 50 !== 0) await store.addVersion(cert.id, pool[i % POOL], 'bench');
      certIds.push(cert.id);
    }
    const probes: ProbeResultRecord[] = [];
    const installs = [];
    const at = new Date().toISOString();
    for (let i = 0; i < nEndpoints; i++) {
      const name = `ep-${String(i).padStart(5, '0')}`;
      const endpoint = await store.createEndpoint(
        {
          name,
          kind: i % 10 === 0 ? 'connector' : 'agent',
          probeTargets: [{ host: '127.0.0.1', port: 443, sni: `${name}.bench.test` }],
          labels: { site: `s${i % 7}` },
        },
        'bench',
      );
      const certId = certIds[i % certIds.length];
      const { subscription } = await store.upsertSubscription(
        endpoint.id,
        certId,
        { outputs: [{ path: `/etc/ssl/${name}.pem`, format: 'fullchain' }], reload: 'nginx -s reload' },
        'bench',
      );
      if (i % 3 === 0) await store.touchEndpoint(endpoint.id, at);
      const current = i % 2 === 0 ? await store.currentVersion(certId) : undefined;
      if (current) {
        installs.push({
          subscriptionId: subscription.id,
          versionId: current.id,
          state: 'installed' as const,
          info: {},
          actor: `agent:${name}`,
        });
        probes.push({
          endpointId: endpoint.id,
          targetKey: `127.0.0.1:443/${name}.bench.test`,
          source: 'hub',
          at,
          ok: true,
          fingerprint: current.fingerprint,
          notBefore: current.notBefore,
          notAfter: current.notAfter,
          tlsVersion: 'TLSv1.3',
          handshakeMs: 3,
        });
      }
    }
    for (let i = 0; i < installs.length; i += 500)
      await store.transitionDeployments(installs.slice(i, i + 500));
    await store.saveProbeResults(probes);
  } finally {
    await ctx.store.close();
  }
}

export async function startHubProcess(
  dataDir: string,
  token: string,
  cache: 'cached' | 'uncached' = 'cached',
  wait: 'wait-overview' | 'no-wait' = 'no-wait',
) {
  // imported here, not at the top: bench/api-hub.ts imports this module, and its hub need not load esbuild
  const { hubProcess } = await import('./hub-bundle.ts');
  const hub = await hubProcess('api-hub');
  const child = fork(hub.module, [dataDir, token, cache, wait], {
    execArgv: hub.execArgv,
    env: { ...process.env, ...hub.env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const info = await new Promise<{ url: string; caPem: string }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      // the hub's own log lines (JSON too) may come first: the line that names the url is ours
      const line = out.split('\n').find((l) => l.startsWith('{"url"'));
      if (line) resolve(JSON.parse(line));
    });
    child.once('exit', (code) => reject(new Error(`hub exited with ${code}`)));
  });
  return { info, child };
}

/** Sends `msg` to the hub process (bench/api-hub.ts) and resolves with its answer, the next message that has `field`. */
function ask<T>(child: ChildProcess, msg: object, field: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (m: Record<string, unknown>) => {
      if (!(field in m)) return;
      child.off('message', onMessage);
      resolve(m as T);
    };
    child.on('message', onMessage);
    child.send(msg);
  });
}

/** The hub's longest event-loop delay and GC pause since the last ask (bench/loop-stalls.ts). */
export async function hubStalls(child: ChildProcess): Promise<Stalls> {
  return (await ask<{ stalls: Stalls }>(child, { stalls: true }, 'stalls')).stalls;
}

export async function hubCpuMs(child: ChildProcess): Promise<number> {
  const m = await ask<{ cpu: NodeJS.CpuUsage }>(child, { cpu: true }, 'cpu');
  return (m.cpu.user + m.cpu.system) / 1000;
}

/** Pages the hub's page cache rendered so far (its misses): how often a commit emptied a page that was asked for. */
export async function hubRenders(child: ChildProcess): Promise<number> {
  return (await ask<{ cache: { misses: number } }>(child, { cpu: true }, 'cache')).cache.misses;
}

export type LiveWriterKind = 'hub' | 'other';

/**
 * A fleet's batched last-seen writes (500 endpoints every `everyMs`) until stopped: committed by the hub's own store
 * (`hub`, bench/api-hub.ts runs it), or by another connection to its database (`other`: `otherWriter`).
 */
export async function liveWriter(
  child: ChildProcess,
  dataDir: string,
  everyMs: number,
  kind: LiveWriterKind,
): Promise<{ stop: () => Promise<number> }> {
  if (kind === 'other') return otherWriter(dataDir, everyMs);
  await ask(child, { live: everyMs }, 'live');
  return { stop: async () => (await ask<{ commits: number }>(child, { live: 0 }, 'commits')).commits };
}

interface Answer {
  ms: number;
  status: number;
  bytes: number;
  next?: string;
  body: string;
}

/** How the client asks: `gzip` as the CLI does (src/cli/client.ts), `identity` as a client that sends no accept-encoding. */
export type Encoding = 'gzip' | 'identity';

function get(url: string, agent: Agent, token: string, caPem: string, encoding: Encoding): Promise<Answer> {
  const started = performance.now();
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (encoding === 'gzip') headers['accept-encoding'] = 'gzip';
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, ca: caPem, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const wire = Buffer.concat(chunks);
        // decompressed as the CLI does, so the timed answer is one a client can use
        const body = (res.headers['content-encoding'] === 'gzip' ? gunzipSync(wire) : wire).toString();
        const next = res.headers['x-next-cursor'];
        resolve({
          ms: performance.now() - started,
          status: res.statusCode ?? 0,
          bytes: wire.length,
          ...(typeof next === 'string' ? { next } : {}),
          body,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

export const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

/** Commits a batch of 500 endpoint touches of `store` every `everyMs`, until stopped (then: how many commits). */
export async function touchEvery(store: Store, everyMs: number) {
  const ids = (await store.listEndpoints()).map((e) => e.id);
  let commits = 0;
  let next = 0;
  const tick = async () => {
    const at = new Date().toISOString();
    const batch = Array.from({ length: 500 }, () => ({ endpointId: ids[next++ % ids.length], at }));
    await store.touchEndpoints(batch);
    commits++;
  };
  let running = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(tick);
  }, everyMs);
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
      return commits;
    },
  };
}

/** `touchEvery` through another connection to the hub's database (its own store in this process). */
async function otherWriter(dataDir: string, everyMs: number) {
  const { store } = await openDataDir({
    dataDir,
    env: {},
    logger: createLogger({ level: 'warn' }),
    clock: systemClock,
    create: false,
  });
  const writer = await touchEvery(store, everyMs);
  return {
    stop: async () => {
      const commits = await writer.stop();
      await store.close();
      return commits;
    },
  };
}

/** One client walking every page of `path` once (at most `maxPages`): on a cached hub, each page's first answer. */
export async function walkOnce(
  base: string,
  path: string,
  opts: { limit: number; token: string; caPem: string; encoding: Encoding; maxPages?: number },
) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const first = `${base}${path}?limit=${opts.limit}`;
  const times: number[] = [];
  let url: string | undefined = first;
  while (url && times.length < (opts.maxPages ?? 1000)) {
    const a = await get(url, agent, opts.token, opts.caPem, opts.encoding);
    if (a.status !== 200) throw new Error(`${path}: HTTP ${a.status} ${a.body.slice(0, 200)}`);
    times.push(a.ms);
    url = a.next ? `${first}&cursor=${encodeURIComponent(a.next)}` : undefined;
  }
  agent.destroy();
  times.sort((a, b) => a - b);
  return { pages: times.length, p50: pct(times, 50), p99: pct(times, 99), max: times.at(-1)! };
}

/**
 * Who generates the load: `autocannon` (the load generator of the fastify project: raw TLS sockets and its own HTTP
 * parser, so on these 2 shared cores the 50 clients cost less CPU than the hub answering them) or `node` (Node's
 * https client, which costs more per page than the hub does; kept to compare).
 */
export type LoadClient = 'autocannon' | 'node';

export interface MeasureOptions {
  limit: number;
  concurrency: number;
  requests: number;
  maxSeconds: number;
  token: string;
  caPem: string;
  encoding: Encoding;
  client?: LoadClient;
}

/**
 * `concurrency` clients over keep-alive connections, each walking the route's pages (following `x-next-cursor`,
 * back to the first page at the end), until `requests` answers or `maxSeconds`; each connection's first answer
 * (its TLS handshake) is not timed.
 */
export async function measure(base: string, path: string, opts: MeasureOptions) {
  const first = `${base}${path}?limit=${opts.limit}`;
  const warm = await get(first, new Agent({ keepAlive: false }), opts.token, opts.caPem, opts.encoding);
  if (warm.status !== 200) throw new Error(`${path}: HTTP ${warm.status} ${warm.body.slice(0, 200)}`);
  const shape = {
    items: (JSON.parse(warm.body) as unknown[]).length,
    bytes: warm.bytes,
    paged: warm.next !== undefined,
  };
  const run =
    opts.client === 'node' ? await measureNode(base, path, opts) : await measureAutocannon(base, path, opts);
  const { times } = run;
  times.sort((a, b) => a - b);
  return {
    n: times.length,
    errors: run.errors,
    ...shape,
    p50: pct(times, 50),
    p95: pct(times, 95),
    p99: pct(times, 99),
    perSecond: (times.length / run.wallMs) * 1000,
    /** Distinct pages answered (the first and every cursor). */
    pages: run.pages,
  };
}

/** A connection's place in its walk of the pages (autocannon's per-connection context). */
interface Walk {
  next?: string;
}

/** The load from autocannon: answers timed from the request's write to the answer's last byte. */
async function measureAutocannon(base: string, path: string, opts: MeasureOptions) {
  const first = `${path}?limit=${opts.limit}`;
  const headers: Record<string, string> = { authorization: `Bearer ${opts.token}` };
  if (opts.encoding === 'gzip') headers['accept-encoding'] = 'gzip';
  const times: number[] = [];
  const connected = new Set<unknown>();
  /** The cursors answered: proof that the clients walked the pages, not the first one again and again. */
  const pages = new Set<string>();
  let errors = 0;
  const t0 = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: base,
        connections: opts.concurrency,
        // one untimed answer per connection first, as with the node client
        amount: opts.requests + opts.concurrency,
        duration: opts.maxSeconds,
        headers,
        initialContext: {},
        // autocannon empties a connection's context each time it starts this list again: a list longer than a
        // connection's share of the answers keeps its walk (a much longer one costs seconds to set up)
        requests: Array<autocannon.Request>(2 * Math.ceil(opts.requests / opts.concurrency) + 10).fill({
          setupRequest: (req, context) => ({ ...req, path: (context as Walk).next ?? first }),
          onResponse: (_status, _body, context, answer) => {
            const next = answer?.['x-next-cursor'];
            if (typeof next === 'string') pages.add(next);
            (context as Walk).next =
              typeof next === 'string' ? `${first}&cursor=${encodeURIComponent(next)}` : undefined;
          },
        }),
      },
      (err, r) => (err ? reject(err) : resolve(r)),
    );
    instance.on('response', (client, status, _bytes, ms) => {
      if (!connected.has(client)) return void connected.add(client);
      if (status !== 200) errors++;
      else times.push(ms);
    });
  });
  return { times, errors: errors + result.errors, wallMs: performance.now() - t0, pages: pages.size + 1 };
}

/** The load from Node's https client (the answer read whole and, for gzip, inflated, as the CLI does). */
async function measureNode(base: string, path: string, opts: MeasureOptions) {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const first = `${base}${path}?limit=${opts.limit}`;
  // one untimed request per connection first: TLS handshakes are connection setup, not the cost of a page
  await Promise.all(
    Array.from({ length: opts.concurrency }, () => get(first, agent, opts.token, opts.caPem, opts.encoding)),
  );
  const times: number[] = [];
  const pages = new Set<string>();
  let started = 0;
  let errors = 0;
  const deadline = performance.now() + opts.maxSeconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      let url = first;
      while (started < opts.requests && performance.now() < deadline) {
        started++;
        const a = await get(url, agent, opts.token, opts.caPem, opts.encoding).catch((e: Error) => e);
        if (a instanceof Error || a.status !== 200) {
          errors++; // reported, not timed (e.g. a keep-alive socket the hub closed after a very long answer)
          url = first;
          continue;
        }
        times.push(a.ms);
        if (a.next) pages.add(a.next);
        url = a.next ? `${first}&cursor=${encodeURIComponent(a.next)}` : first;
      }
    }),
  );
  const wallMs = performance.now() - t0;
  agent.destroy();
  return { times, errors, wallMs, pages: pages.size + 1 };
}

export async function run(args: string[]): Promise<void> {
  const flag = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : def;
  };
  const nCerts = Number(flag('certs', '10000'));
  const nEndpoints = Number(flag('endpoints', '10000'));
  const limit = Number(flag('limit', '100'));
  const levels = flag('concurrency', '1,50').split(',').map(Number);
  const requests = Number(flag('requests', '4000'));
  const maxSeconds = Number(flag('max-seconds', '30'));
  const routes = flag('routes', Object.keys(ROUTES).join(',')).split(',');
  const keep = flag('keep', '');
  // uncached: every page rendered (the cost of a page after each commit); cached: the page cache on (the default)
  const modes = flag('cache', 'uncached,cached').split(',') as Array<'cached' | 'uncached'>;
  // gzip: as the CLI asks; identity: a client that sends no accept-encoding (curl without --compressed)
  const encodings = flag('encoding', 'identity,gzip').split(',') as Encoding[];
  const liveMs = Number(flag('live', '0'));
  const liveKind = flag('live-writer', 'hub') as LiveWriterKind;
  const client = flag('client', 'autocannon') as LoadClient;
  const cpuModel =
    /model name\s*:\s*(.*)/.exec(await readFile('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model;
  process.stdout.write(
    `api: ${cpus().length} cores (${cpuModel}), node ${process.version}, ${new Date().toISOString()}; ` +
      `${nCerts} certificates, ${nEndpoints} endpoints/subscriptions, limit=${limit}, load from ${client}\n`,
  );
  if (keep) await mkdir(keep, { recursive: true });
  const dir = keep || (await mkdtemp(join(tmpdir(), 'certfleet-bench-api-')));
  const dataDir = join(dir, 'hub');
  // a kept data dir keeps the admin token of its first start
  const tokenFile = join(dir, 'bench-token');
  const token =
    (await readFile(tokenFile, 'utf8').catch(() => undefined)) ??
    `cfa_bench_${randomBytes(16).toString('hex')}`;
  await writeFile(tokenFile, token, { mode: 0o600 });
  if (!keep || !(await readFile(join(dataDir, 'ca.pem')).catch(() => undefined))) {
    const t = performance.now();
    await populate(dataDir, nCerts, nEndpoints);
    process.stdout.write(`setup: ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
  }
  process.stdout.write(
    '| route | cache | encoding | concurrency | items/page | bytes/page (wire) | paged | requests (errors) | p50 ms | p95 ms | p99 ms | req/s | hub CPU ms/page | client CPU ms/page | hub stalls: loop max / GC max / GC total ms | client stalls: loop max / GC max ms | loadavg |\n',
  );
  process.stdout.write('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n');
  const clientStalls = watchStalls();
  const walks: string[] = [];
  for (const cache of modes) await runHub(cache);
  if (walks.length) {
    process.stdout.write(
      "\nFirst walk of each cached route before its timed requests (one client, every page once; per route the first encoding's walk renders each page, the next one compresses the stored page)\n\n",
    );
    process.stdout.write(
      '| route | encoding | pages | p50 ms | p99 ms | max ms | loadavg |\n|---|---|---|---|---|---|---|\n',
    );
    for (const line of walks) process.stdout.write(line);
  }

  async function runHub(cache: 'cached' | 'uncached') {
    const { info, child } = await startHubProcess(dataDir, token, cache, 'wait-overview');
    try {
      for (const route of routes) {
        if (cache === 'cached')
          for (const encoding of encodings) {
            const load = await loadavg();
            const w = await walkOnce(info.url, ROUTES[route], { limit, token, caPem: info.caPem, encoding });
            walks.push(
              `| ${ROUTES[route]} | ${encoding} | ${w.pages} | ${w.p50.toFixed(1)} | ${w.p99.toFixed(1)} | ${w.max.toFixed(1)} | ${load} |\n`,
            );
          }
        for (const concurrency of levels)
          for (const encoding of encodings) {
            const load = await loadavg();
            const cpu0 = await hubCpuMs(child);
            const renders0 = await hubRenders(child);
            await hubStalls(child);
            clientStalls.take();
            const clientCpu0 = process.cpuUsage();
            const writer =
              cache === 'cached' && liveMs > 0
                ? await liveWriter(child, dataDir, liveMs, liveKind)
                : undefined;
            const r = await measure(info.url, ROUTES[route], {
              limit,
              concurrency,
              requests,
              maxSeconds,
              token,
              caPem: info.caPem,
              encoding,
              client,
            });
            const clientCpu = process.cpuUsage(clientCpu0);
            const commits = await writer?.stop();
            const cpu = (await hubCpuMs(child)) - cpu0;
            const renders = (await hubRenders(child)) - renders0;
            const hub = await hubStalls(child);
            const clientStall = clientStalls.take();
            const f = (ms: number) => ms.toFixed(1);
            process.stdout.write(
              `| ${ROUTES[route]} | ${cache}${commits !== undefined ? ` (${commits} ${liveKind === 'hub' ? 'hub' : 'other-connection'} commits, ${renders} renders)` : ''} | ${encoding} | ${concurrency} | ${r.items} | ${r.bytes} | ${r.paged ? `yes (${r.pages} walked)` : 'no'} | ${r.n}${r.errors ? ` (${r.errors})` : ''} | ` +
                `${f(r.p50)} | ${f(r.p95)} | ${f(r.p99)} | ${r.perSecond.toFixed(0)} | ${(cpu / r.n).toFixed(2)} | ${((clientCpu.user + clientCpu.system) / 1000 / r.n).toFixed(2)} | ${f(hub.loopMaxMs)} / ${f(hub.gcMaxMs)} / ${f(hub.gcTotalMs)} | ${f(clientStall.loopMaxMs)} / ${f(clientStall.gcMaxMs)} | ${load} |\n`,
            );
          }
      }
    } finally {
      child.disconnect();
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    }
  }
  if (!keep) await rm(dir, { recursive: true, force: true });
}
