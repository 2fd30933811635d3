import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import type { Diagnosis, DoctorReport } from '../../src/doctor/diagnosis.ts';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.ts';
import { MemoryAccountStore } from '../../src/issuers/acme/account-store.ts';
import { generatePrivateKeyPem } from '../../src/pki/keys.ts';
import { PropagationCheckedSolver } from '../../src/solvers/dns-propagation.ts';
import { ExecHookSolver } from '../../src/solvers/exec-hook.ts';
import {
  HubHttp01Solver,
  MemoryHttp01Store,
  startHttp01Listener,
} from '../../src/solvers/http01-responder.ts';
import { firstOffered, type Solver } from '../../src/solvers/solver.ts';
import { WebrootSolver } from '../../src/solvers/webroot.ts';
import { runCli } from '../helpers/cli.ts';
import { onCleanup, suiteCleanup } from '../helpers/cleanup.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';

let pebble: Pebble;
let work: string;
const rand = () => `d${randomBytes(4).toString('hex')}.example.test`;

const atEnd = suiteCleanup();
before(async () => {
  pebble = await startPebble();
  atEnd(() => pebble.stop());
  work = await mkdtemp(join(tmpdir(), 'certfleet-doctor-'));
  atEnd(() => rm(work, { recursive: true, force: true }));
});

function addIssuer(t: TestContext, hub: TestHub, solver: Solver, directoryUrl = pebble.directoryUrl) {
  const name = `acme-${randomBytes(3).toString('hex')}`;
  const accountStore = new MemoryAccountStore();
  const issuer = new AcmeIssuer({
    name,
    directoryUrl,
    termsOfServiceAgreed: true,
    caPem: pebble.caPem,
    accountStore,
    solvers: firstOffered([solver]),
    pollTimeoutMs: 20_000,
  });
  onCleanup(t, () => issuer.close());
  hub.ctx.issuers.set(name, issuer);
  return { name, accountStore };
}

/** Creates a certificate on the issuer, lets the real issuance fail, and returns what the doctor says. */
async function failAndDiagnose(
  t: TestContext,
  hub: TestHub,
  solver: Solver,
  directoryUrl?: string,
): Promise<{ cert: Diagnosis; report: DoctorReport }> {
  const { name: issuer } = addIssuer(t, hub, solver, directoryUrl);
  const name = rand();
  const cert = await hub.ctx.store.createCertificate(
    { name, sans: [name], keyType: 'ecdsa-p256', issuer, lifetimeDays: 90 },
    'admin:test',
  );
  await assert.rejects(hub.renewal.renewNow(cert.name, 'admin:test', 'test'));
  const report = await hub.client.get<DoctorReport>(`/api/v1/doctor?certificate=${name}`);
  const diag = report.certificates[0].diagnoses.find((d) => d.status === 'fail')!;
  assert.ok(diag, `a failing diagnosis for ${name}: ${JSON.stringify(report.certificates[0].diagnoses)}`);
  assert.equal(report.ok, false);
  return { cert: diag, report };
}

/** A tiny static server on pebble's http-01 port serving `dir`. */
async function staticServer(t: TestContext, dir: string): Promise<void> {
  const server: Server = createHttpServer(async (req, res) => {
    try {
      res.end(await readFile(join(dir, (req.url ?? '/').split('?')[0])));
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(pebble.httpPort, '127.0.0.1', r));
  onCleanup(t, async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
}

describe('doctor diagnoses real failures against Pebble', () => {
  test('unauthorized: the http-01 answer served is wrong; shows what the CA expected and what was served', async (t) => {
    const hub = await startTestHub(t);
    const tokens = new MemoryHttp01Store();
    const listener = await startHttp01Listener({ host: '127.0.0.1', port: pebble.httpPort, store: tokens });
    onCleanup(t, () => listener.close());
    const wrong: Solver = {
      type: 'http-01',
      present: (ch) => tokens.put(ch.token, `${ch.token}.stale-thumbprint`),
      cleanup: (ch) => tokens.delete(ch.token),
    };
    const { cert } = await failAndDiagnose(t, hub, wrong);
    assert.equal(cert.check, 'unauthorized');
    assert.match(cert.message, /instead of the expected key authorization/);
    assert.match(String(cert.evidence?.served), /\.stale-thumbprint$/);
    assert.ok(cert.evidence?.expected);
    assert.match(cert.fix, /nothing else answers/);
  });

  test('wrong webroot (404): the solver writes where the web server does not serve', async (t) => {
    const hub = await startTestHub(t);
    const served = join(work, 'served');
    const elsewhere = join(work, 'elsewhere');
    await mkdir(served, { recursive: true });
    await staticServer(t, served);
    const { cert } = await failAndDiagnose(t, hub, new WebrootSolver(elsewhere));
    assert.equal(cert.check, 'wrong webroot (404)');
    assert.match(cert.message, /404/);
    assert.match(cert.fix, /document root/);
  });

  test('connection refused on port 80: nothing listens where the CA validates', async (t) => {
    const hub = await startTestHub(t);
    const { cert } = await failAndDiagnose(t, hub, new HubHttp01Solver(new MemoryHttp01Store()));
    assert.equal(cert.check, 'connection refused on port 80');
    assert.match(String(cert.evidence?.caDetail), /refused/);
    assert.match(cert.fix, /http-01 listener/);
  });

  test('hook failed: command, exit code and stderr tail of the exec solver', async (t) => {
    const hub = await startTestHub(t);
    const script = join(work, 'auth-hook.sh');
    await writeFile(
      script,
      '#!/bin/sh\necho "looking up zone" >&2\necho "zone example.test not found at provider" >&2\nexit 3\n',
    );
    await chmod(script, 0o755);
    const { cert } = await failAndDiagnose(t, hub, new ExecHookSolver({ authCommand: script }));
    assert.equal(cert.check, 'hook failed');
    assert.equal(cert.evidence?.command, script);
    assert.equal(cert.evidence?.exitCode, 3);
    assert.match(String(cert.evidence?.stderrTail), /zone example\.test not found at provider/);
    assert.match(cert.message, /exited with 3: zone example\.test not found/);
  });

  test('DNS TXT not visible: the provider "succeeded" but the resolver never shows the record', async (t) => {
    const hub = await startTestHub(t);
    const writesNothing: Solver = { type: 'dns-01', present: async () => {}, cleanup: async () => {} };
    const solver = new PropagationCheckedSolver(writesNothing, {
      resolvers: [`127.0.0.1:${pebble.dnsPort}`],
      timeoutMs: 1000,
      intervalMs: 200,
    });
    const { cert } = await failAndDiagnose(t, hub, solver);
    assert.equal(cert.check, 'DNS TXT not visible');
    assert.match(String(cert.evidence?.record), /^_acme-challenge\.d[0-9a-f]+\.example\.test$/);
    assert.deepEqual(cert.evidence?.resolvers, [`127.0.0.1:${pebble.dnsPort}`]);
  });

  test('rate limited (CA side): a real rateLimited problem from a small server in front of Pebble', async (t) => {
    const hub = await startTestHub(t);
    const front = await rateLimitingFront(t);
    const { cert } = await failAndDiagnose(t, hub, new HubHttp01Solver(new MemoryHttp01Store()), front);
    assert.equal(cert.check, 'rate limited');
    assert.equal(cert.evidence?.limit, 'New Certificates per Exact Set of Hostnames');
    assert.equal(cert.evidence?.freesAt, '2031-01-02T03:04:05.000Z');
    assert.match(cert.message, /frees at 2031-01-02T03:04:05.000Z/);
  });

  test('account or key problems: the stored account key was replaced, the CA does not know it', async (t) => {
    const hub = await startTestHub(t);
    const tokens = new MemoryHttp01Store();
    const listener = await startHttp01Listener({ host: '127.0.0.1', port: pebble.httpPort, store: tokens });
    onCleanup(t, () => listener.close());
    const { name: issuer, accountStore } = addIssuer(t, hub, new HubHttp01Solver(tokens));
    const name = rand();
    await hub.certificates.create(
      { name, sans: [name], keyType: 'ecdsa-p256', issuer, lifetimeDays: 90 },
      'admin:test',
    );
    let report = await hub.client.get<DoctorReport>(`/api/v1/doctor?certificate=${name}`);
    assert.equal(report.ok, true, JSON.stringify(report));
    assert.equal(report.issuers[0].diagnoses.find((d) => d.check === 'account valid')?.status, 'ok');

    const stored = (await accountStore.load(pebble.directoryUrl))!;
    await accountStore.save(pebble.directoryUrl, {
      ...stored,
      accountKeyPem: await generatePrivateKeyPem('ecdsa-p256'),
    });
    report = await hub.client.get<DoctorReport>(`/api/v1/doctor?certificate=${name}`);
    const d = report.issuers[0].diagnoses.find((x) => x.check === 'account or key problems')!;
    assert.equal(d.status, 'fail');
    assert.equal(d.evidence?.problemType, 'accountDoesNotExist');
    assert.match(d.fix, /remove the stored account/);
    assert.equal(report.ok, false);
  });

  test('clock skew: a hub clock 2 minutes behind warns, 1 hour behind fails; the CLI exits 1 and explains', async (t) => {
    const clock = new ManualClock(Date.now() - 120_000);
    const hub = await startTestHub(t, { clock });
    addIssuer(t, hub, new HubHttp01Solver(new MemoryHttp01Store()));
    let report = await hub.client.get<DoctorReport>('/api/v1/doctor');
    let skew = report.issuers[0].diagnoses.find((d) => d.check === 'clock skew')!;
    assert.equal(skew.status, 'warn');
    assert.ok(Math.abs(Number(skew.evidence?.skewSeconds) + 120) <= 3, JSON.stringify(skew.evidence));
    assert.match(skew.message, /behind the CA's/);

    clock.set(Date.now() - 3_600_000);
    const caFile = join(work, `hub-ca-${randomBytes(3).toString('hex')}.pem`);
    await writeFile(caFile, hub.caPem);
    const { code, stdout } = await runCli([
      '--hub',
      hub.url,
      '--token',
      hub.token,
      '--ca-file',
      caFile,
      'doctor',
    ]);
    assert.equal(code, 1);
    assert.match(stdout, /issuer acme-[0-9a-f]+ \(https:\/\/localhost:\d+\/dir\)/);
    assert.match(stdout, /\[FAIL\] clock skew: the hub clock is 3(59|60)\d s behind the CA's/);
    assert.match(stdout, /fix: synchronise the hub clock with NTP/);
    report = await hub.client.get<DoctorReport>('/api/v1/doctor');
    skew = report.issuers[0].diagnoses.find((d) => d.check === 'clock skew')!;
    assert.equal(skew.status, 'fail');
  });
});

/**
 * "Rate-limiting front": an HTTPS proxy in front of Pebble (same TLS cert) that answers every new-order with
 * Let's Encrypt's rateLimited problem document and Retry-After, since Pebble has no rate limits.
 */
async function rateLimitingFront(t: TestContext): Promise<string> {
  const upstream = new URL(pebble.directoryUrl);
  const server = createHttpsServer({ cert: pebble.tlsCertPem, key: pebble.tlsKeyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/order-plz') {
        res.writeHead(429, {
          'content-type': 'application/problem+json',
          'retry-after': '86400',
          'replay-nonce': 'x',
        });
        return res.end(
          JSON.stringify({
            type: 'urn:ietf:params:acme:error:rateLimited',
            detail:
              'too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2031-01-02 03:04:05 UTC: see https://letsencrypt.org/docs/rate-limits/#new-certificates-per-exact-set-of-hostnames',
            status: 429,
          }),
        );
      }
      const up = request(
        {
          host: '127.0.0.1',
          port: upstream.port,
          path: req.url,
          method: req.method,
          headers: req.headers,
          ca: pebble.caPem,
          servername: 'localhost',
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.writeHead(502).end());
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(t, async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return `https://localhost:${(server.address() as { port: number }).port}/dir`;
}
