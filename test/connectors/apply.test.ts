/**
 * Connector endpoints declared in a `certfleet apply` file, through the real binary: secrets given by reference
 * (a key file, an environment variable) are read by the CLI and sealed on the hub, never echoed; re-applying is
 * idempotent and names what changed; problems point at their path in the file.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HubClient } from '../../src/cli/client.ts';
import { runCli, startHubProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const TOKEN = 'lb-token-9c2e41d07a';
const TOKEN2 = 'lb-token-second-5f1b';

const fleet = (opts: { timeout?: number; url?: string } = {}) => `
endpoints:
  - name: lb1
    kind: connector
    probeTargets: [{ host: 127.0.0.1, port: 9443, sni: web.test }]
    connector:
      kind: http
      baseUrl: https://lb1.example.net:8443
      timeoutSeconds: ${opts.timeout ?? 30}
      secrets:
        api_token: { env: LB1_TOKEN }
      upload:
        - name: upload pem
          method: PUT
          url: ${opts.url ?? '/api/v1/certificates/{{name}}'}
          headers: { authorization: "Bearer {{secret:api_token}}" }
          json: { certificate: "{{cert_pem}}", key: "{{key_pem}}" }
  - name: edge1
    kind: connector
    connector:
      kind: ssh
      host: 127.0.0.1
      port: 2222
      user: certfleet-deploy
      keyFile: ./hub_key
  - name: box
    kind: connector
    connector: { kind: command }
`;

describe('certfleet apply with connector endpoints', () => {
  test('creates connector endpoints with sealed secrets, is idempotent, prints changed fields without secrets, and names problems by path', async (t) => {
    const hub = await startHubProcess(t);
    const dir = await tempDir(t);
    const file = join(dir, 'certfleet.yaml');
    const keyPem = generateKeyPairSync('ed25519').privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    await writeFile(join(dir, 'hub_key'), keyPem, { mode: 0o600 });
    await writeFile(file, fleet());
    const env = { ...hub.env, LB1_TOKEN: TOKEN };
    const client = new HubClient({
      hub: hub.url,
      token: hub.token,
      caPem: await readFile(hub.env.CERTFLEET_CA_FILE!, 'utf8'),
    });
    const noSecrets = (out: string) => {
      for (const s of [TOKEN, TOKEN2, 'PRIVATE KEY']) assert.ok(!out.includes(s), `${s} not printed`);
    };

    const first = await runCli(['apply', '-f', file], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /3 change\(s\) applied/);
    noSecrets(first.stdout + first.stderr);
    const lb1 = await client.get<Record<string, unknown>>('/api/v1/endpoints/lb1/connector');
    assert.equal(lb1.kind, 'http');
    assert.deepEqual(lb1.secrets, ['api_token']);
    const edge1 = await client.get<Record<string, unknown>>('/api/v1/endpoints/edge1/connector');
    assert.deepEqual(
      [edge1.kind, edge1.host, edge1.port, edge1.secrets],
      ['ssh', '127.0.0.1', 2222, ['privateKey']],
    );
    noSecrets(JSON.stringify([lb1, edge1]));

    const again = await runCli(['apply', '-f', file], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /0 change\(s\) applied/);

    // A new token and a longer timeout: both named, the token's value never.
    await writeFile(file, fleet({ timeout: 60 }));
    const changed = await runCli(['apply', '-f', file], { ...env, LB1_TOKEN: TOKEN2 });
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /update\s+endpoint\s+lb1\s+.*connector\.timeoutSeconds: 30 → 60/);
    assert.match(changed.stdout, /connector secret api_token: changed/);
    assert.match(changed.stdout, /1 change\(s\) applied/);
    noSecrets(changed.stdout + changed.stderr);

    // Problems point at their path in the file; nothing is changed.
    await writeFile(file, fleet({ url: '/api/v1/certificates/{{nme}}' }));
    const bad = await runCli(['apply', '-f', file], {});
    assert.notEqual(bad.code, 0);
    assert.match(
      bad.stderr,
      /endpoints\[0\]\.connector\.upload\[0\]\.url: unknown placeholder "\{\{nme\}\}"/,
    );
    await writeFile(file, fleet());
    const noEnv = await runCli(['apply', '-f', file], hub.env);
    assert.notEqual(noEnv.code, 0);
    assert.match(
      noEnv.stderr,
      /endpoints\[0\]\.connector\.secrets\.api_token: environment variable LB1_TOKEN is not set/,
    );
    await writeFile(file, fleet().replace('./hub_key', './missing_key'));
    const noKey = await runCli(['apply', '-f', file], env);
    assert.notEqual(noKey.code, 0);
    assert.match(noKey.stderr, /endpoints\[1\]\.connector\.keyFile: cannot read .*missing_key/);
  });
});
