/**
 * Issuance benchmark: N certificates issued by an in-process hub (ACME issuer, HTTP-01 answered by the hub's
 * own listener) against one Pebble with PEBBLE_VA_NOSLEEP=1, through the HTTP API with bounded concurrency;
 * compared with certbot and lego issuing a sample of 5 each, one after the other, against the same Pebble.
 *
 *   npm run bench -- issuance [--n 50,200] [--concurrency 8] [--sample 5] [--no-write]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { HubClient } from '../src/cli/client.ts';
import { createLogger } from '../src/core/log.ts';
import { hubConfigSchema } from '../src/hub/hub-config.ts';
import { startHub } from '../src/hub/hub.ts';
import { startPebble, type Pebble } from '../test/helpers/pebble.ts';
import { writeResultsSection } from './results-section.ts';

const exec = promisify(execFile);

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

const rand = (p: string) => `${p}-${randomBytes(5).toString('hex')}.example.test`;

async function hubRun(pebble: Pebble, caFile: string, n: number, concurrency: number) {
  const dataDir = await mkdtemp(join(tmpdir(), 'certfleet-bench-hub-'));
  const token = `cfa_bench_${randomBytes(12).toString('hex')}`;
  const hub = await startHub({
    dataDir,
    listen: '127.0.0.1:0',
    config: hubConfigSchema.parse({
      issuers: [
        {
          name: 'pebble',
          kind: 'acme',
          directoryUrl: pebble.directoryUrl,
          termsOfServiceAgreed: true,
          caFile,
          solvers: [{ kind: 'http-01' }],
          // Pebble has no rate limits; the default (Let's Encrypt's) budget would refuse the 41st new
          // certificate under example.test, since first issuances are counted and checked like renewals.
          rateLimits: {
            limits: { NewOrdersPerAccount: null, CertificatesPerDomain: null, CertificatesPerFQDNSet: null },
          },
        },
      ],
      http01: { listen: `127.0.0.1:${pebble.httpPort}` },
      planner: { enabled: false },
    }),
    logger: createLogger({ level: 'error' }),
    env: { ...process.env, CERTFLEET_ADMIN_TOKEN: token },
  });
  const client = new HubClient({ hub: hub.url, token, caPem: hub.caPem });
  try {
    // Account registration happens once per directory; keep it out of the rate like peers' sample keeps theirs in.
    await client.post('/api/v1/certificates', { name: 'warmup', sans: [rand('warm')], issuer: 'pebble' });
    let next = 0;
    let failed = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const i = next++;
          try {
            await client.post('/api/v1/certificates', {
              name: `c${i}`,
              sans: [rand(`c${i}`)],
              issuer: 'pebble',
            });
          } catch (e) {
            failed++;
            process.stderr.write(`c${i}: ${(e as Error).message}\n`);
          }
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    return { n, seconds, failed, perMinute: ((n - failed) / seconds) * 60 };
  } finally {
    await hub.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function peerRun(tool: 'certbot' | 'lego', pebble: Pebble, caFile: string, sample: number) {
  const dir = await mkdtemp(join(tmpdir(), `certfleet-bench-${tool}-`));
  const times: number[] = [];
  try {
    for (let i = 0; i < sample; i++) {
      const domain = rand(tool);
      const t0 = performance.now();
      if (tool === 'certbot') {
        await exec(
          'certbot',
          [
            'certonly',
            '--standalone',
            '--non-interactive',
            '--http-01-port',
            String(pebble.httpPort),
            '--http-01-address',
            '127.0.0.1',
            '--server',
            pebble.directoryUrl,
            '--config-dir',
            join(dir, 'config'),
            '--work-dir',
            join(dir, 'work'),
            '--logs-dir',
            join(dir, 'logs'),
            '--agree-tos',
            '--register-unsafely-without-email',
            '-d',
            domain,
          ],
          { env: { ...process.env, REQUESTS_CA_BUNDLE: caFile }, timeout: 120_000 },
        );
      } else {
        await exec(
          'lego',
          [
            '--server',
            pebble.directoryUrl,
            '--email',
            'bench@example.test',
            '--accept-tos',
            '--domains',
            domain,
            '--http',
            '--http.port',
            `127.0.0.1:${pebble.httpPort}`,
            '--path',
            dir,
            'run',
          ],
          { env: { ...process.env, LEGO_CA_CERTIFICATES: caFile }, timeout: 120_000 },
        );
      }
      times.push((performance.now() - t0) / 1000);
    }
    const total = times.reduce((a, b) => a + b, 0);
    return { tool, sample, meanSeconds: total / sample, perMinute: (sample / total) * 60, times };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<void> {
  const ns = (arg(args, '--n') ?? '50,200').split(',').map(Number);
  const concurrency = Number(arg(args, '--concurrency') ?? 8);
  const sample = Number(arg(args, '--sample') ?? 5);
  const pebble = await startPebble();
  const caDir = await mkdtemp(join(tmpdir(), 'certfleet-bench-ca-'));
  const caFile = join(caDir, 'pebble-ca.pem');
  await writeFile(caFile, pebble.caPem);
  try {
    const hubRuns = [];
    for (const n of ns) {
      const r = await hubRun(pebble, caFile, n, concurrency);
      console.log(
        `hub: ${r.n} certificates in ${r.seconds.toFixed(1)} s = ${r.perMinute.toFixed(0)}/min (${r.failed} failed)`,
      );
      hubRuns.push(r);
    }
    const peers = [];
    if (args.includes('--no-peers')) return;
    for (const tool of ['certbot', 'lego'] as const) {
      const r = await peerRun(tool, pebble, caFile, sample);
      console.log(
        `${tool}: ${sample} certificates, mean ${r.meanSeconds.toFixed(2)} s = ${r.perMinute.toFixed(1)}/min`,
      );
      peers.push(r);
    }
    const certbot = peers[0].perMinute;
    const lines = [
      '## issuance',
      '',
      `Run ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; one Pebble 2.4 (PEBBLE_VA_NOSLEEP=1) on loopback, HTTP-01.`,
      `Command: \`npm run bench -- issuance --n ${ns.join(',')} --concurrency ${concurrency} --sample ${sample}\`.`,
      `certfleet: in-process hub, certificates created through the HTTP API (POST /api/v1/certificates, ${concurrency} at a time), HTTP-01 answered by the hub's own listener; the account is registered before timing.`,
      `certbot 2.1 (\`certonly --standalone\`) and lego 4.9 (\`--http\`): ${sample} certificates each, one after another, sharing one account (registered during the first).`,
      '',
      '| issuer | certificates | wall time | per minute | vs certbot |',
      '|---|---|---|---|---|',
      ...hubRuns.map(
        (r) =>
          `| certfleet hub | ${r.n}${r.failed ? ` (${r.failed} failed)` : ''} | ${r.seconds.toFixed(1)} s | ${r.perMinute.toFixed(0)} | ${(r.perMinute / certbot).toFixed(0)}× |`,
      ),
      ...peers.map(
        (p) =>
          `| ${p.tool} | ${p.sample} | ${(p.meanSeconds * p.sample).toFixed(1)} s (mean ${p.meanSeconds.toFixed(2)} s) | ${p.perMinute.toFixed(1)} | ${(p.perMinute / certbot).toFixed(1)}× |`,
      ),
      '',
      `Target ≥ 10× certbot's rate: ${hubRuns.every((r) => r.perMinute >= 10 * certbot) ? 'met' : 'NOT met'}.`,
      '',
    ];
    const text = lines.join('\n');
    console.log(`\n${text}`);
    if (!args.includes('--no-write')) await writeResultsSection(text);
  } finally {
    await pebble.stop();
    await rm(caDir, { recursive: true, force: true });
  }
}
