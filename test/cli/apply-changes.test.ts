/**
 * `apply` and change windows, and what an update says: a bad cron expression or time zone is refused (by the CLI
 * and by the hub itself, through the one schema) with the path of the field; an update lists each changed field
 * and warns about removed ones.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { CertfleetError } from '../../src/core/errors.ts';
import { runCli } from '../helpers/cli.ts';
import { cliEnv } from '../helpers/cli-agent.ts';
import { startTestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';

const GOOD = `
certificates:
  - name: web
    sans: [web.example.test, www.example.test]
  - name: api
    sans: [api.example.test]
    keyType: rsa-2048
    lifetimeDays: 7
endpoints:
  - name: web1
    probeTargets: [{ host: 127.0.0.1, port: 8443, sni: web.example.test }]
subscriptions:
  - endpoint: web1
    certificate: web
    outputs:
      - { path: /etc/ssl/web/fullchain.pem, format: fullchain, mode: "0644" }
      - { path: /etc/ssl/web/key.pem, format: key, mode: "0600" }
    configTest: nginx -t
    reload: nginx -s reload
`;

describe('apply: change windows are judged with croner before anything changes', () => {
  const withWindow = (window: string) =>
    GOOD.replace('reload: nginx -s reload', `reload: nginx -s reload\n    window: ${window}`);
  const cases: Array<[string, string, RegExp]> = [
    [
      'an invalid cron expression',
      '{ cron: "0 25 * * *", durationMinutes: 60, timezone: Europe/Berlin }',
      /subscriptions\[0\]\.window\.cron: "0 25 \* \* \*" is not a valid cron expression: Invalid value for hour/,
    ],
    [
      'an unknown time zone',
      '{ cron: "0 2 * * *", durationMinutes: 60, timezone: Mars/Olympus }',
      /subscriptions\[0\]\.window\.timezone: "Mars\/Olympus" is not an IANA time zone/,
    ],
  ];
  test('a file with a bad window points at the field and changes nothing', async (t) => {
    const hub = await startTestHub(t);
    const env = cliEnv(hub);
    const file = join(await tempDir(t), 'certfleet.yaml');
    for (const [what, window, message] of cases) {
      await writeFile(file, withWindow(window));
      const r = await runCli(['apply', '-f', file], env);
      assert.equal(r.code, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, message, what);
      assert.match(r.stderr, /hint: .*nothing was changed/, what);
      assert.deepEqual(await hub.ctx.store.listCertificates(), [], what);
      assert.deepEqual(await hub.ctx.store.listEndpoints(), [], what);
    }
  });

  test('a request that skipped the CLI is refused at the hub with the path of the bad field; nothing changes', async (t) => {
    const hub = await startTestHub(t);
    const config = {
      certificates: [{ name: 'web', sans: ['web.example.test'] }],
      endpoints: [{ name: 'web1' }],
      subscriptions: [
        {
          endpoint: 'web1',
          certificate: 'web',
          reload: 'true',
          window: { cron: 'every night', durationMinutes: 60, timezone: 'Mars/Olympus' },
        },
      ],
    };
    const refused = await hub.client.post('/api/v1/apply', { config }).then(
      () => assert.fail('accepted'),
      (e: CertfleetError) => e,
    );
    assert.equal(refused.code, 'VALIDATION_FAILED');
    assert.match(
      refused.message,
      /config\.subscriptions\[0\]\.window\.cron: "every night" is not a valid cron/,
    );
    assert.match(refused.message, /config\.subscriptions\[0\]\.window\.timezone: "Mars\/Olympus"/);
    assert.deepEqual(await hub.ctx.store.listCertificates(), []);
    // The subscription route uses the same schema.
    await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.example.test'] });
    await hub.client.post('/api/v1/endpoints', { name: 'web1' });
    const direct = await hub.client.post('/api/v1/subscriptions', { ...config.subscriptions[0] }).then(
      () => assert.fail('accepted'),
      (e: CertfleetError) => e,
    );
    assert.match(direct.message, /window\.cron: "every night" is not a valid cron/);
    assert.deepEqual(await hub.ctx.store.listSubscriptions(), []);
  });
});

describe('apply: an update says what it changes', () => {
  test('each changed field is printed with its old and new value; a removed field is warned about', async (t) => {
    const testHub = await startTestHub(t);
    const hub = { env: cliEnv(testHub) };
    const file = join(await tempDir(t), 'certfleet.yaml');
    await writeFile(file, GOOD);
    assert.equal((await runCli(['apply', '-f', file], hub.env)).code, 0);

    await writeFile(
      file,
      GOOD.replace('    reload: nginx -s reload\n', '').replace(
        'configTest: nginx -t',
        'configTest: nginx -t -q',
      ),
    );
    const dry = await runCli(['apply', '-f', file, '--dry-run'], hub.env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      /update\s+subscription\s+web1\/web\s+configTest: "nginx -t" → "nginx -t -q"; reload: removed \(was "nginx -s reload"\)/,
    );
    assert.match(
      dry.stderr,
      /warning: subscription web1\/web: would remove reload \(absent from .*certfleet\.yaml\)/,
    );
    const applied = await runCli(['apply', '-f', file], hub.env);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stderr, /warning: subscription web1\/web: removed reload/);
    assert.match(applied.stdout, /1 change\(s\) applied/);
    const [sub] = JSON.parse((await runCli(['--json', 'subscription', 'list'], hub.env)).stdout);
    assert.equal(sub.configTest, 'nginx -t -q');
    assert.equal(sub.reload, undefined);
  });
});
