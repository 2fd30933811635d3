/**
 * The dashboard at fleet size: 10,000 certificates and 10,000 endpoints (bench/api.ts's fleet), a real hub in its
 * own process, and headless Debian chromium. Measures the time from navigation to the overview's first meaningful
 * paint (the first page of attention-ordered rows drawn), cold (the hub builds the overview's read model on that
 * request) and warm, and the JSON pages behind the dashboard at concurrency 1 and 50, asked as the browser asks
 * them (`accept-encoding: gzip`: each answer is decompressed, and checked against the uncompressed answer once).
 *
 *   npm run bench -- dashboard [--certs 10000] [--endpoints 10000] [--runs 5] [--requests 4000] [--keep DIR] [--live MS]
 *                              [--live-writer hub|other]
 *
 * The JSON pages are measured in the steady state of a running hub: one client walks every overview page once first
 * (each page's first answer is a render the page cache stores; that walk's times are printed on their own line), then
 * `--requests` answers at each concurrency (the p99 of 4,000 is the 40th slowest, not the 4th of 400). `--live MS`:
 * meanwhile the hub commits a fleet's batched agent touches every MS ms through its own store, as agents' contacts
 * are committed; `--live-writer other`: another connection commits them, the worst case (bench/api.ts `liveWriter`).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import {
  hubCpuMs,
  hubRenders,
  liveWriter,
  loadavg,
  pct,
  populate,
  startHubProcess,
  type LiveWriterKind,
} from './api.ts';

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
}

interface Answer {
  ms: number;
  status: number;
  body: string;
  cookie?: string;
}

function call(url: string, agent: Agent, caPem: string, headers: Record<string, string>, body?: string) {
  const started = performance.now();
  return new Promise<Answer>((resolve, reject) => {
    const req = request(
      url,
      {
        agent,
        ca: caPem,
        method: body ? 'POST' : 'GET',
        headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            ms: performance.now() - started,
            status: res.statusCode ?? 0,
            body: (res.headers['content-encoding'] === 'gzip' ? gunzipSync : (b: Buffer) => b)(
              Buffer.concat(chunks),
            ).toString(),
            ...(res.headers['set-cookie'] ? { cookie: String(res.headers['set-cookie']).split(';')[0] } : {}),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `concurrency` clients walking the overview's pages (or fetching `path` again), `requests` answers in all. */
async function measure(
  base: string,
  path: string,
  cookie: string,
  caPem: string,
  concurrency: number,
  requests: number,
) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  // as a browser asks: gzip accepted (decompressed in `call`; must equal the identity answer)
  const headers = { cookie, 'accept-encoding': 'gzip' };
  const walk: number[] = [];
  for (let url: string | undefined = `${base}${path}`; url && walk.length < 1000;) {
    const a = await call(url, agent, caPem, headers);
    if (a.status !== 200) throw new Error(`${path}: HTTP ${a.status} ${a.body.slice(0, 200)}`);
    walk.push(a.ms);
    const next = path.startsWith('/ui/api/overview')
      ? (JSON.parse(a.body) as { next?: string }).next
      : undefined;
    url = next ? `${base}${path}&cursor=${next}` : undefined;
  }
  walk.sort((a, b) => a - b);
  const warmed = await Promise.all(
    Array.from({ length: concurrency }, () => call(`${base}${path}`, agent, caPem, headers)),
  );
  const identity = await call(`${base}${path}`, agent, caPem, { cookie });
  if (warmed.some((a) => a.body !== identity.body))
    throw new Error(`${path}: gzip answer differs from identity`);
  const times: number[] = [];
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      let url = `${base}${path}`;
      while (started < requests) {
        started++;
        const a = await call(url, agent, caPem, headers);
        if (a.status !== 200) throw new Error(`${path}: HTTP ${a.status} ${a.body.slice(0, 200)}`);
        times.push(a.ms);
        const next = path.startsWith('/ui/api/overview')
          ? (JSON.parse(a.body) as { next?: string }).next
          : undefined;
        url = next ? `${base}${path}&cursor=${next}` : `${base}${path}`;
      }
    }),
  );
  const wall = performance.now() - t0;
  agent.destroy();
  times.sort((a, b) => a - b);
  return {
    walk: { pages: walk.length, p50: pct(walk, 50), p99: pct(walk, 99), max: walk.at(-1)! },
    n: times.length,
    p50: pct(times, 50),
    p95: pct(times, 95),
    p99: pct(times, 99),
    perSecond: (times.length / wall) * 1000,
  };
}

export async function run(args: string[]): Promise<void> {
  const nCerts = Number(arg(args, 'certs', '10000'));
  const nEndpoints = Number(arg(args, 'endpoints', '10000'));
  const runs = Number(arg(args, 'runs', '5'));
  const requests = Number(arg(args, 'requests', '4000'));
  const keep = arg(args, 'keep', '');
  const liveMs = Number(arg(args, 'live', '0'));
  const liveKind = arg(args, 'live-writer', 'hub') as LiveWriterKind;
  const dir = keep || (await mkdtemp(join(tmpdir(), 'certfleet-bench-dash-')));
  const dataDir = join(dir, 'data');
  if (!existsSync(join(dataDir, 'hub.db'))) {
    const t = performance.now();
    await populate(dataDir, nCerts, nEndpoints);
    process.stdout.write(
      `populated ${nCerts} certificates / ${nEndpoints} endpoints in ${((performance.now() - t) / 1000).toFixed(1)} s\n`,
    );
  }
  // the hub creates the admin token on the first start over a data dir: a kept dir keeps its token beside it
  const tokenFile = join(dir, 'admin-token');
  const token = existsSync(tokenFile)
    ? (await readFile(tokenFile, 'utf8')).trim()
    : `cfa_bench_${randomBytes(16).toString('hex')}`;
  await writeFile(tokenFile, token, { mode: 0o600 });
  // the browser first, so the first visit comes right after the hub listens (the overview is built at start in the
  // background: a visit this early is the coldest there is)
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
  const { info, child } = await startHubProcess(dataDir, token);
  const listening = performance.now();
  try {
    const agent = new Agent({ keepAlive: true });
    const signIn = await call(
      `${info.url}/ui/session`,
      agent,
      info.caPem,
      { origin: info.url },
      JSON.stringify({ token }),
    );
    if (signIn.status !== 200 || !signIn.cookie)
      throw new Error(`sign-in: HTTP ${signIn.status} ${signIn.body}`);
    const [name, value] = signIn.cookie.split('=');
    process.stdout.write(
      `machine: ${cpus().length} cores (${cpus()[0]?.model}), node ${process.version}, ${new Date().toISOString()}, loadavg ${await loadavg()}\n`,
    );

    // First meaningful paint: navigation start → the first overview row is in the DOM (drawn in the same frame).
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 900 },
    });
    await context.addCookies([{ name, value, url: info.url }]);
    const paints: number[] = [];
    let sinceListening = 0;
    const paintOnce = async (label: string) => {
      const page = await context.newPage();
      await page.goto(`${info.url}/ui`, { waitUntil: 'commit' });
      await page.waitForSelector('[data-table="overview"] tbody tr');
      const paint = await page.evaluate(
        () => performance.getEntriesByName('certfleet:overview')[0]?.startTime ?? Number.NaN,
      );
      await page.close();
      process.stdout.write(`${label}: first meaningful paint ${paint.toFixed(0)} ms\n`);
      return paint;
    };
    for (let i = 0; i < runs + 1; i++) {
      if (i === 0) sinceListening = performance.now() - listening;
      const page = await context.newPage();
      const t = performance.now();
      await page.goto(`${info.url}/ui`, { waitUntil: 'commit' });
      await page.waitForSelector('[data-table="overview"] tbody tr');
      const outside = performance.now() - t;
      // the page's own clock: navigation start → the first page of rows inserted (marked by app.js)
      const navTiming = await page.evaluate(
        () => performance.getEntriesByName('certfleet:overview')[0]?.startTime ?? Number.NaN,
      );
      paints.push(navTiming);
      void outside;
      if (i === 0 || i === runs) {
        // where the time went, by the page's own clock: each resource's start and end after navigation start
        const resources = await page.evaluate(() =>
          performance
            .getEntriesByType('resource')
            .map((e) => e as PerformanceResourceTiming)
            .map((e) => `${new URL(e.name).pathname} ${e.startTime.toFixed(0)}-${e.responseEnd.toFixed(0)}`)
            .join(', '),
        );
        process.stdout.write(
          `${i === 0 ? 'cold' : 'warm'} paint ${paints[i].toFixed(0)} ms (seen by the driver after ${outside.toFixed(0)} ms): ${resources}\n`,
        );
      }
      await page.close();
    }
    const warm = paints.slice(1).sort((a, b) => a - b);
    process.stdout.write(
      `| overview first meaningful paint | cold (first visit, navigation ${sinceListening.toFixed(0)} ms after the hub listened) ${paints[0].toFixed(0)} ms | warm median ${warm[Math.floor(warm.length / 2)].toFixed(0)} ms, max ${warm.at(-1)!.toFixed(0)} ms (${runs} runs) | loadavg ${await loadavg()} |\n`,
    );
    // after a commit that is not a deployment transition (a new certificate): the model refreshes that certificate
    const created = await call(
      `${info.url}/api/v1/certificates`,
      agent,
      info.caPem,
      { authorization: `Bearer ${token}` },
      JSON.stringify({ name: `bench-new-${Date.now()}`, sans: ['bench-new.bench.test'] }),
    );
    if (created.status !== 201) throw new Error(`create: HTTP ${created.status} ${created.body}`);
    const afterChange = await paintOnce('after a new certificate');
    process.stdout.write(
      `| overview first meaningful paint after a change | ${afterChange.toFixed(0)} ms | loadavg ${await loadavg()} |\n`,
    );

    const cpu0 = await hubCpuMs(child);
    const walks: string[] = [];
    for (const [path, concurrencies] of [
      ['/ui/api/overview?limit=50', [1, 50]],
      ['/ui/api/overview?limit=50&state=expiring', [1, 50]],
      ['/ui/api/overview?limit=50&name=cert-012', [1]],
      ['/ui/api/timeline', [1]],
      ['/ui/api/certificates/cert-00100', [1]],
      ['/ui/api/endpoints/ep-00100', [1]],
      ['/ui/api/events?limit=50', [1]],
    ] as const) {
      for (const c of concurrencies) {
        const renders0 = await hubRenders(child);
        const writer = liveMs > 0 ? await liveWriter(child, dataDir, liveMs, liveKind) : undefined;
        const r = await measure(
          info.url,
          path,
          signIn.cookie,
          info.caPem,
          c,
          c === 1 ? Math.min(requests, 1000) : requests,
        );
        if (r.walk.pages > 1)
          walks.push(
            `| ${path} | ${r.walk.pages} | ${r.walk.p50.toFixed(1)} | ${r.walk.p99.toFixed(1)} | ${r.walk.max.toFixed(1)} |\n`,
          );
        const commits = await writer?.stop();
        process.stdout.write(
          `| ${path}${commits !== undefined ? ` (${commits} ${liveKind === 'hub' ? 'hub' : 'other-connection'} commits, ${(await hubRenders(child)) - renders0} renders meanwhile)` : ''} | ${c} | ${r.n} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.perSecond.toFixed(0)} | ${await loadavg()} |\n`,
        );
      }
    }
    process.stdout.write(
      `\nFirst walk before the timed requests (one client, every page once; on the first walk of a path each answer is a render)\n\n| path | pages | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n${walks.join('')}\n`,
    );
    process.stdout.write(`hub CPU over the API runs: ${((await hubCpuMs(child)) - cpu0).toFixed(0)} ms\n`);
    agent.destroy();
  } finally {
    await browser.close();
    child.disconnect();
    await new Promise((r) => child.once('exit', r));
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
}
