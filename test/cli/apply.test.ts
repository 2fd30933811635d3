import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli, startHubProcess } from '../helpers/cli.ts';
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

describe('certfleet apply -f certfleet.yaml', () => {
  test('creates, then is idempotent, then updates only what changed; --dry-run changes nothing', async (t) => {
    const hub = await startHubProcess(t);
    const dir = await tempDir(t);
    const file = join(dir, 'certfleet.yaml');
    await writeFile(file, GOOD);

    const dry = await runCli(['apply', '-f', file, '--dry-run'], hub.env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /create\s+certificate\s+web/);
    assert.match(dry.stdout, /dry run: 4 change\(s\) would be made/);
    assert.match((await runCli(['cert', 'list'], hub.env)).stdout, /^NAME.*\n?$/);

    const first = await runCli(['apply', '-f', file], hub.env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /4 change\(s\) applied/);
    const certs = JSON.parse((await runCli(['--json', 'cert', 'list'], hub.env)).stdout);
    assert.deepEqual(
      certs.map((c: any) => [c.name, c.keyType, c.lifetimeDays]),
      [
        ['api', 'rsa-2048', 7],
        ['web', 'ecdsa-p256', 30],
      ],
    );
    assert.ok(
      certs.every((c: any) => c.current),
      'each certificate got a version',
    );

    const second = await runCli(['apply', '-f', file], hub.env);
    assert.match(second.stdout, /0 change\(s\) applied/);
    assert.equal(
      (JSON.parse((await runCli(['--json', 'events', '--kind', 'version.'], hub.env)).stdout) as unknown[])
        .length,
      2,
    );

    await writeFile(
      file,
      GOOD.replace('sans: [api.example.test]', 'sans: [api.example.test, api2.example.test]'),
    );
    const third = await runCli(['apply', '-f', file], hub.env);
    assert.match(
      third.stdout,
      /update\s+certificate\s+api\s+sans: api\.example\.test → api\.example\.test,api2\.example\.test; reissue/,
    );
    assert.match(third.stdout, /1 change\(s\) applied/);
    const api = JSON.parse((await runCli(['--json', 'cert', 'show', 'api'], hub.env)).stdout);
    assert.deepEqual(api.sans, ['api.example.test', 'api2.example.test']);
    // The reissue is a renewal like any other (coalesced, within the issuer's budget), recorded as such.
    const renewals = JSON.parse((await runCli(['--json', 'events', '--kind', 'renewal.'], hub.env)).stdout);
    assert.deepEqual(
      renewals.map((e: any) => [e.kind, e.subject, e.data.reason]),
      [['renewal.succeeded', 'certificate:api', 'config changed']],
    );
  });

  const bad: Array<[string, string, RegExp]> = [
    [
      'points at the bad name',
      GOOD.replace('sans: [api.example.test]', 'sans: ["*.bad_name"]'),
      /certificates\[1\]\.sans\[0\]: "\*\.bad_name" is not a valid DNS name/,
    ],
    [
      'names an unknown key type',
      GOOD.replace('keyType: rsa-2048', 'keyType: rsa-1024'),
      /certificates\[1\]\.keyType: must be one of/,
    ],
    ['reports malformed YAML with its line', 'certificates:\n  - name: web\n   sans: [a', /malformed YAML/],
    [
      'refuses a subscription to a missing certificate',
      GOOD.replace('certificate: web', 'certificate: ghost'),
      /subscriptions\[0\]\.certificate: certificate "ghost" does not exist/,
    ],
    [
      'refuses an unknown field',
      GOOD.replace('lifetimeDays: 7', 'lifetimeDays: 7\n    colour: blue'),
      /certificates\[1\]: Unrecognized key: "colour"/,
    ],
    [
      'refuses a pkcs12 output without password',
      GOOD.replace('format: key,', 'format: pkcs12,'),
      /outputs\[1\]\.passwordRef: pkcs12 and jks outputs need a passwordRef/,
    ],
  ];
  for (const [name, yaml, message] of bad) {
    test(`a bad file ${name} and changes nothing`, async (t) => {
      const hub = await startHubProcess(t);
      const file = join(await tempDir(t), 'certfleet.yaml');
      await writeFile(file, yaml);
      const r = await runCli(['apply', '-f', file], hub.env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /hint: .*nothing was changed/);
      assert.deepEqual(JSON.parse((await runCli(['--json', 'cert', 'list'], hub.env)).stdout), []);
      assert.deepEqual(JSON.parse((await runCli(['--json', 'endpoint', 'list'], hub.env)).stdout), []);
    });
  }
});
