import { describe, test, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:https';
import acme from 'acme-client';
import { AcmeIssuer, type AcmeIssuerOptions } from '../../src/issuers/acme/acme-issuer.ts';
import { MemoryAccountStore } from '../../src/issuers/acme/account-store.ts';
import { CertfleetError } from '../../src/core/errors.ts';
import { inspectCertificate } from '../../src/pki/inspect.ts';
import {
  HubHttp01Solver,
  MemoryHttp01Store,
  startHttp01Listener,
} from '../../src/solvers/http01-responder.ts';
import { WebrootSolver } from '../../src/solvers/webroot.ts';
import { ChalltestsrvDnsSolver } from '../../src/solvers/dns-challtestsrv.ts';
import { PropagationCheckedSolver } from '../../src/solvers/dns-propagation.ts';
import { ExecHookSolver } from '../../src/solvers/exec-hook.ts';
import { firstOffered, type Solver, type SolverSelector } from '../../src/solvers/solver.ts';
import { freePort, startPebble, type Pebble } from '../helpers/pebble.ts';
import { startTcpBalancer } from '../helpers/tcp-balancer.ts';
import { onCleanup, suiteCleanup } from '../helpers/cleanup.ts';
import { assertOpensslVerifies } from '../helpers/openssl-verify.ts';

const rand = () => `${randomBytes(5).toString('hex')}.example.test`;

let pebble: Pebble;
let dir: string;
const store = new MemoryHttp01Store();
let listener: { close(): Promise<void> };

function issuer(t: TestContext, solvers: SolverSelector, extra: Partial<AcmeIssuerOptions> = {}): AcmeIssuer {
  const i = new AcmeIssuer({
    name: 'pebble',
    directoryUrl: pebble.directoryUrl,
    termsOfServiceAgreed: true,
    email: 'ops@example.test',
    caPem: pebble.caPem,
    accountStore: new MemoryAccountStore(),
    solvers,
    ...extra,
  });
  onCleanup(t, () => i.close());
  return i;
}

/** openssl's verdict on leaf + chain against pebble's issuing root. */
async function verifyChain(certPem: string, chainPems: string[]): Promise<void> {
  await assertOpensslVerifies(certPem, chainPems, await pebble.issuingRootPem());
}

async function rejection(p: Promise<unknown>): Promise<CertfleetError> {
  try {
    await p;
  } catch (e) {
    return e as CertfleetError;
  }
  assert.fail('expected a rejection');
}

const atEnd = suiteCleanup();
before(async () => {
  pebble = await startPebble();
  atEnd(() => pebble.stop());
  dir = await mkdtemp(join(tmpdir(), 'certfleet-acme-'));
  atEnd(() => rm(dir, { recursive: true, force: true }));
  listener = await startHttp01Listener({ host: '127.0.0.1', port: pebble.httpPort, store });
  atEnd(() => listener.close());
});

describe('AcmeIssuer against real Pebble', () => {
  test('issues an ecdsa-p256 certificate with http-01 served by the hub listener; chain verifies to the root', async (t) => {
    const name = rand();
    const t0 = performance.now();
    const v = await issuer(t, firstOffered([new HubHttp01Solver(store)])).issue({
      certificateName: 'web',
      sans: [name],
      keyType: 'ecdsa-p256',
      lifetimeDays: 90,
    });
    console.log(
      `# one http-01 issuance (incl. account registration): ${Math.round(performance.now() - t0)} ms`,
    );
    const info = inspectCertificate(v.certPem);
    assert.deepEqual(info.sans, [name]);
    assert.ok(v.chainPems.length >= 1);
    assert.match(v.keyPem, /BEGIN PRIVATE KEY/);
    await verifyChain(v.certPem, v.chainPems);
  });

  test('issues an rsa-2048 certificate for two names with a webroot served by a static server', async (t) => {
    const webroot = await mkdtemp(join(dir, 'webroot-'));
    // A tiny static server standing in for nginx: serves files from the webroot on pebble's http-01 port.
    await listener.close();
    const seen: string[] = [];
    const server: Server = createServer(async (req, res) => {
      seen.push(req.url ?? '');
      try {
        res.end(await readFile(join(webroot, req.url!.split('?')[0])));
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(pebble.httpPort, '127.0.0.1', r));
    try {
      const names = [rand(), rand()];
      const v = await issuer(t, firstOffered([new WebrootSolver(webroot)])).issue({
        certificateName: 'two',
        sans: names,
        keyType: 'rsa-2048',
        lifetimeDays: 90,
      });
      assert.deepEqual(inspectCertificate(v.certPem).sans.sort(), names.sort());
      assert.equal(seen.length >= 2, true, 'pebble fetched the webroot files');
      await assert.rejects(
        stat(join(webroot, '.well-known/acme-challenge', seen[0].split('/').pop()!)),
        /ENOENT/,
      );
      await verifyChain(v.certPem, v.chainPems);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      listener = await startHttp01Listener({ host: '127.0.0.1', port: pebble.httpPort, store });
    }
  });

  test('issues with dns-01 via challtestsrv, waiting until its DNS shows the TXT record', async (t) => {
    const dns = new PropagationCheckedSolver(new ChalltestsrvDnsSolver(pebble.challtestsrvUrl), {
      resolvers: [`127.0.0.1:${pebble.dnsPort}`],
      timeoutMs: 5000,
    });
    const v = await issuer(t, firstOffered([dns])).issue({
      certificateName: 'dns',
      sans: [rand()],
      keyType: 'ecdsa-p384',
      lifetimeDays: 90,
    });
    await verifyChain(v.certPem, v.chainPems);
  });

  test('issues a wildcard plus its base name: the wildcard goes to dns-01, the base to http-01', async (t) => {
    const base = rand();
    const used: string[] = [];
    const spy = (s: Solver): Solver => ({
      type: s.type,
      present: (ch, sig) => (used.push(`${s.type} ${ch.identifier}`), s.present(ch, sig)),
      cleanup: (ch, sig) => s.cleanup(ch, sig),
    });
    const v = await issuer(
      t,
      firstOffered([spy(new HubHttp01Solver(store)), spy(new ChalltestsrvDnsSolver(pebble.challtestsrvUrl))]),
    ).issue({ certificateName: 'wild', sans: [`*.${base}`, base], keyType: 'ecdsa-p256', lifetimeDays: 90 });
    assert.deepEqual(inspectCertificate(v.certPem).sans.sort(), [`*.${base}`, base].sort());
    assert.deepEqual(used.sort(), [`dns-01 ${base}`, `http-01 ${base}`]);
    await verifyChain(v.certPem, v.chainPems);
  });

  test('issues with dns-01 through certbot-style exec hooks (auth output reaches cleanup)', async (t) => {
    const log = join(dir, `hook-${randomBytes(3).toString('hex')}.log`);
    const auth = join(dir, 'auth.sh');
    const clean = join(dir, 'cleanup.sh');
    await writeFile(
      auth,
      `#!/bin/sh\nset -e\ncurl -sf -X POST -d "{\\"host\\":\\"_acme-challenge.$CERTBOT_DOMAIN.\\",\\"value\\":\\"$CERTBOT_VALIDATION\\"}" ${pebble.challtestsrvUrl}/set-txt\necho "auth $CERTBOT_DOMAIN $CERTBOT_TOKEN" >> ${log}\necho record-42\n`,
    );
    await writeFile(
      clean,
      `#!/bin/sh\ncurl -sf -X POST -d "{\\"host\\":\\"_acme-challenge.$CERTBOT_DOMAIN.\\"}" ${pebble.challtestsrvUrl}/clear-txt\necho "cleanup $CERTBOT_DOMAIN $CERTBOT_AUTH_OUTPUT" >> ${log}\n`,
    );
    await chmod(auth, 0o755);
    await chmod(clean, 0o755);
    const name = rand();
    const v = await issuer(
      t,
      firstOffered([new ExecHookSolver({ authCommand: auth, cleanupCommand: clean })]),
    ).issue({
      certificateName: 'exec',
      sans: [name],
      keyType: 'ecdsa-p256',
      lifetimeDays: 90,
    });
    await verifyChain(v.certPem, v.chainPems);
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    assert.match(lines[0], new RegExp(`^auth ${name.replaceAll('.', '\\.')} [A-Za-z0-9_-]+$`));
    assert.equal(lines[1], `cleanup ${name} record-42`);
  });

  test('a challenge nobody answers fails with ACME_ERROR unauthorized, deactivates the other authorization, cleans up', async (t) => {
    const good = rand();
    const bad = rand();
    const unserved = await mkdtemp(join(dir, 'unserved-'));
    const cleaned: string[] = [];
    const webroot = new WebrootSolver(unserved); // written, but no server serves this directory
    const hub = new HubHttp01Solver(store);
    const track = (s: Solver): Solver => ({
      type: s.type,
      present: (ch, sig) => s.present(ch, sig),
      cleanup: async (ch, sig) => {
        await s.cleanup(ch, sig);
        cleaned.push(ch.identifier);
      },
    });
    const authzUrls: string[] = [];
    const accounts = new MemoryAccountStore();
    const i = issuer(t, (id) => (id.value === bad ? track(webroot) : track(hub)), {
      accountStore: accounts,
      logger: {
        info: (o: any, m) => void (m === 'acme order created' && authzUrls.push(o.order_url)),
        warn: () => {},
      },
    });
    const err = await rejection(
      i.issue({ certificateName: 'fail', sans: [good, bad], keyType: 'ecdsa-p256', lifetimeDays: 90 }),
    );
    assert.ok(err instanceof CertfleetError, String(err));
    assert.equal(err.code, 'ACME_ERROR');
    assert.match(err.message, new RegExp(`${bad.replaceAll('.', '\\.')}: unauthorized: .+`));
    assert.equal(err.details?.type, 'urn:ietf:params:acme:error:unauthorized');
    assert.deepEqual(cleaned.sort(), [good, bad].sort());
    // The order's other authorization was valid and is now deactivated, so it cannot be reused.
    assert.deepEqual(await authzStates(accounts, authzUrls[0]), { [good]: 'deactivated', [bad]: 'invalid' });
  });

  test('a name the CA rejects becomes ACME_ERROR with the CA detail', async (t) => {
    const err = await rejection(
      issuer(t, firstOffered([new HubHttp01Solver(store)])).issue({
        certificateName: 'blocked',
        sans: ['www.blocked-domain.example'],
        keyType: 'ecdsa-p256',
        lifetimeDays: 90,
      }),
    );
    assert.equal(err.code, 'ACME_ERROR', String(err));
    assert.match(err.message, /rejectedIdentifier: .*blocked/i);
    assert.equal(err.details?.type, 'urn:ietf:params:acme:error:rejectedIdentifier');
    assert.ok(err.hint.length > 0);
  });

  test('termsOfServiceAgreed: false is refused before any account or order exists', async (t) => {
    const accounts = new MemoryAccountStore();
    const err = await rejection(
      issuer(t, firstOffered([new HubHttp01Solver(store)]), {
        termsOfServiceAgreed: false,
        accountStore: accounts,
      }).issue({ certificateName: 'tos', sans: [rand()], keyType: 'ecdsa-p256', lifetimeDays: 90 }),
    );
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, /termsOfServiceAgreed/);
    assert.match(err.hint, /termsOfServiceAgreed: true/);
    assert.equal(await accounts.load(pebble.directoryUrl), undefined);
  });

  test('the account is registered once and reused from the store', async (t) => {
    const accounts = new MemoryAccountStore();
    const i = issuer(t, firstOffered([new HubHttp01Solver(store)]), { accountStore: accounts });
    await i.issue({ certificateName: 'a', sans: [rand()], keyType: 'ecdsa-p256', lifetimeDays: 90 });
    const saved = await accounts.load(pebble.directoryUrl);
    assert.match(saved?.accountUrl ?? '', /^https:\/\/localhost:\d+\/my-account\//);
    const again = issuer(t, firstOffered([new HubHttp01Solver(store)]), { accountStore: accounts });
    await again.issue({ certificateName: 'b', sans: [rand()], keyType: 'ecdsa-p256', lifetimeDays: 90 });
    assert.deepEqual(await accounts.load(pebble.directoryUrl), saved);
  });

  test('orders from one issuer share its kept-alive TLS connections: 10 orders, 2 at a time, open at most 3', async (t) => {
    // A TCP relay in front of Pebble counts the connections; Pebble builds its URLs from the Host header, so every
    // request of the orders goes through it. Before nonces were kept from answers, each signed request was
    // preceded by a HEAD newNonce whose answer closed its connection: ≈ 7 connections per order.
    const relay = await startTcpBalancer(await freePort(), [Number(new URL(pebble.directoryUrl).port)]);
    onCleanup(t, () => relay.close());
    const i = issuer(t, firstOffered([new HubHttp01Solver(store)]), {
      directoryUrl: pebble.directoryUrl.replace(/:\d+\//, `:${relay.port}/`),
    });
    const names = Array.from({ length: 10 }, () => rand());
    const issueNext = async () => {
      for (let name = names.pop(); name; name = names.pop())
        await i.issue({ certificateName: name, sans: [name], keyType: 'ecdsa-p256', lifetimeDays: 90 });
    };
    await Promise.all([issueNext(), issueNext()]);
    assert.ok(
      relay.state.served[0] <= 3,
      `${relay.state.served[0]} connections for 10 orders (2 at a time); expected at most 3`,
    );
  });

  test('revokes with an RFC 5280 reason; revoking again reports alreadyRevoked', async (t) => {
    const i = issuer(t, firstOffered([new HubHttp01Solver(store)]));
    const v = await i.issue({
      certificateName: 'rev',
      sans: [rand()],
      keyType: 'ecdsa-p256',
      lifetimeDays: 90,
    });
    await i.revoke(v.certPem, 'superseded');
    const err = await rejection(i.revoke(v.certPem, 'keyCompromise'));
    assert.equal(err.code, 'ACME_ERROR');
    assert.match(err.message, /alreadyRevoked/);
    await assert.rejects(i.revoke(v.certPem, 'bogus' as any), /unknown revocation reason/);
  });

  test('an aborted signal stops issuance and still cleans up the presented challenge', async (t) => {
    const ac = new AbortController();
    let cleaned = 0;
    const hanging: Solver = {
      type: 'http-01',
      present: async () => ac.abort(new Error('operator cancelled')),
      cleanup: async () => void cleaned++,
    };
    await assert.rejects(
      issuer(t, () => hanging).issue({
        certificateName: 'x',
        sans: [rand()],
        keyType: 'ecdsa-p256',
        lifetimeDays: 90,
        signal: ac.signal,
      }),
      /operator cancelled/,
    );
    assert.equal(cleaned, 1);
  });
});

/** POST-as-GET of an order's authorizations with the issuer's own account (pebble refuses plain GET). */
async function authzStates(accounts: MemoryAccountStore, orderUrl: string): Promise<Record<string, string>> {
  const account = (await accounts.load(pebble.directoryUrl))!;
  // Test-only: acme-client's axios is global; the issuer itself never touches it.
  acme.axios.defaults.httpsAgent = new Agent({ ca: pebble.caPem });
  const client = new acme.Client({
    directoryUrl: pebble.directoryUrl,
    accountKey: account.accountKeyPem,
    accountUrl: account.accountUrl,
  });
  const order = await client.getOrder({ url: orderUrl } as acme.Order);
  const authzs = await client.getAuthorizations(order);
  return Object.fromEntries(authzs.map((a) => [a.identifier.value, a.status]));
}
