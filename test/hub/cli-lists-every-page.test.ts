import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';

// More than one page of the largest size the hub serves (1000), so the CLI must follow the cursor.
const N = 1003;
const pad = (i: number) => String(i).padStart(4, '0');

test('cert list, endpoint list and status print every item when the hub answers in pages', async (t) => {
  const hub = await startTestHub(t, { logLevel: 'warn' });
  const { store } = hub.ctx;
  for (let i = 0; i < N; i++) {
    const cert = await store.createCertificate(
      {
        name: `c-${pad(i)}`,
        sans: [`c${i}.example.test`],
        keyType: 'ecdsa-p256',
        issuer: 'internal',
        lifetimeDays: 30,
      },
      'test',
    );
    const endpoint = await store.createEndpoint(
      { name: `e-${pad(i)}`, kind: 'agent', probeTargets: [], labels: {} },
      'test',
    );
    await store.upsertSubscription(endpoint.id, cert.id, { outputs: [] }, 'test');
  }
  const env = {
    CERTFLEET_HUB: hub.url,
    CERTFLEET_TOKEN: hub.token,
    CERTFLEET_CA_FILE: join(hub.dataDir, 'ca.pem'),
  };
  const all = Array.from({ length: N }, (_, i) => pad(i));

  const certs = await runCli(['--json', 'cert', 'list'], env);
  assert.equal(certs.code, 0, certs.stderr);
  assert.deepEqual(
    JSON.parse(certs.stdout).map((c: { name: string }) => c.name),
    all.map((n) => `c-${n}`),
  );

  const endpoints = await runCli(['endpoint', 'list'], env);
  assert.equal(endpoints.code, 0, endpoints.stderr);
  const lines = endpoints.stdout.trim().split('\n');
  assert.match(lines[0], /^NAME\s+KIND/);
  assert.deepEqual(
    lines.slice(1).map((l) => l.split(/\s+/)[0]),
    all.map((n) => `e-${n}`),
  );

  const status = await runCli(['--json', 'status'], env);
  assert.equal(status.code, 0, status.stderr);
  assert.deepEqual(
    JSON.parse(status.stdout).map(
      (r: { certificate: string; endpoint: string }) => `${r.certificate} ${r.endpoint}`,
    ),
    all.map((n) => `c-${n} e-${n}`),
  );
  const one = await runCli(['status', 'c-1002'], env);
  assert.match(one.stdout, /c-1002\s+e-1002\s+no version/);
  assert.equal(one.stdout.trim().split('\n').length, 2, 'header and the one row');
});
