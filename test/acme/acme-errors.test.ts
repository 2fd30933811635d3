import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.ts';
import { MemoryAccountStore } from '../../src/issuers/acme/account-store.ts';
import type { CertfleetError } from '../../src/core/errors.ts';
import {
  HubHttp01Solver,
  MemoryHttp01Store,
  startHttp01Listener,
} from '../../src/solvers/http01-responder.ts';
import { firstOffered } from '../../src/solvers/solver.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { freePort, startPebble } from '../helpers/pebble.ts';

const rand = () => `${randomBytes(5).toString('hex')}.example.test`;
const req = () => ({
  certificateName: 'x',
  sans: [rand()],
  keyType: 'ecdsa-p256' as const,
  lifetimeDays: 90,
});

function bare(t: TestContext, directoryUrl: string, caPem?: string): AcmeIssuer {
  const i = new AcmeIssuer({
    name: 't',
    directoryUrl,
    caPem,
    termsOfServiceAgreed: true,
    accountStore: new MemoryAccountStore(),
    solvers: firstOffered([new HubHttp01Solver(new MemoryHttp01Store())]),
  });
  onCleanup(t, () => i.close());
  return i;
}

test('pebble rejecting ~5% of nonces (its default): every issuance still succeeds through badNonce retries', async (t) => {
  const pebble = await startPebble({ nonceReject: true });
  onCleanup(t, () => pebble.stop());
  const store = new MemoryHttp01Store();
  const listener = await startHttp01Listener({ host: '127.0.0.1', port: pebble.httpPort, store });
  onCleanup(t, () => listener.close());
  let badNonces = 0;
  const i = new AcmeIssuer({
    name: 'pebble',
    directoryUrl: pebble.directoryUrl,
    caPem: pebble.caPem,
    termsOfServiceAgreed: true,
    accountStore: new MemoryAccountStore(),
    solvers: firstOffered([new HubHttp01Solver(store)]),
    logger: { info: (_o, m) => void (m === 'acme badNonce, retrying' && badNonces++), warn: () => {} },
  });
  onCleanup(t, () => i.close());
  let issued = 0;
  // ~15 signed requests per issuance: 12 issuances make a badNonce near certain (0.95^180 ≈ 1e-4).
  while (issued < 12 && (badNonces === 0 || issued < 3)) {
    await i.issue(req());
    issued++;
  }
  assert.ok(badNonces > 0, `pebble rejected no nonce in ${issued} issuances`);
});

test('an unreachable directory fails at the first attempt with UNREACHABLE naming the address', async (t) => {
  const port = await freePort();
  const err: CertfleetError = await bare(t, `https://127.0.0.1:${port}/dir`)
    .issue(req())
    .then(
      () => assert.fail('issued?'),
      (e) => e,
    );
  assert.equal(err.code, 'UNREACHABLE');
  assert.match(err.message, new RegExp(`cannot reach https://127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
  assert.equal(err.hint, 'check the directory URL, DNS, firewall and proxy settings of the hub');

  // No retry loop: a directory that hangs up on every connection is tried once.
  let connections = 0;
  const hangUp = createNetServer((s) => {
    connections++;
    s.resetAndDestroy();
  });
  await new Promise<void>((r) => hangUp.listen(0, '127.0.0.1', r));
  onCleanup(t, () => new Promise((r) => hangUp.close(r)));
  const hangUpPort = (hangUp.address() as AddressInfo).port;
  const reset: CertfleetError = await bare(t, `https://127.0.0.1:${hangUpPort}/dir`)
    .issue(req())
    .then(
      () => assert.fail('issued?'),
      (e) => e,
    );
  assert.equal(reset.code, 'UNREACHABLE');
  assert.match(reset.message, new RegExp(`cannot reach https://127\\.0\\.0\\.1:${hangUpPort}: ECONNRESET`));
  assert.equal(connections, 1);
});

test('a directory signed by an untrusted CA is UNREACHABLE with a hint to set caPem', async (t) => {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const err: CertfleetError = await bare(t, pebble.directoryUrl)
    .issue(req())
    .then(
      () => assert.fail('issued?'),
      (e) => e,
    );
  assert.equal(err.code, 'UNREACHABLE');
  assert.match(err.hint, /caPem/);
});

test('garbage from the "CA" becomes a clear ACME_ERROR, not a crash', async (t) => {
  let dirBody = '<html>hello</html>';
  const server = createServer((rq, res) => {
    if (rq.url === '/dir') return res.writeHead(200, { 'content-type': 'text/html' }).end(dirBody);
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html>not acme</html>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(t, () => new Promise((r) => server.close(r)));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  let err: CertfleetError = await bare(t, `${base}/dir`)
    .issue(req())
    .then(
      () => assert.fail('issued?'),
      (e) => e,
    );
  assert.equal(err.code, 'ACME_ERROR');
  assert.match(err.message, /is not an ACME directory \(got text\/html/);

  dirBody = JSON.stringify({
    newNonce: `${base}/nonce`,
    newAccount: `${base}/acct`,
    newOrder: `${base}/order`,
  });
  err = await bare(t, `${base}/dir`)
    .issue(req())
    .then(
      () => assert.fail('issued?'),
      (e) => e,
    );
  assert.equal(err.code, 'ACME_ERROR');
  assert.match(err.message, /account: .*nonce/i);
});

test("a CA's rateLimited answer carries its Retry-After into the error, for the planner to honour", async (t) => {
  const server = createServer((rq, res) => {
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      res
        .writeHead(status, { 'replay-nonce': randomBytes(8).toString('hex'), ...headers })
        .end(JSON.stringify(body));
    if (rq.url === '/dir')
      return json(200, { newNonce: `${base}/nonce`, newAccount: `${base}/acct`, newOrder: `${base}/order` });
    if (rq.url === '/nonce') return json(200, {});
    if (rq.url === '/acct') return json(201, { status: 'valid' }, { location: `${base}/acct/1` });
    json(
      429,
      {
        type: 'urn:ietf:params:acme:error:rateLimited',
        detail: 'too many new orders recently',
        status: 429,
      },
      { 'content-type': 'application/problem+json', 'retry-after': '3600' },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(t, () => new Promise((r) => server.close(r)));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  const err: CertfleetError = await bare(t, `${base}/dir`)
    .issue(req())
    .then(
      () => assert.fail('issued?'),
      (e) => e,
    );
  assert.equal(err.code, 'RATE_LIMITED');
  assert.match(err.message, /rateLimited: too many new orders recently/);
  assert.equal(err.details?.retryAfterSeconds, 3600);
});
