import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { splitPemCertificates } from '../../src/pki/inspect.ts';
import { pebbleCaFile, pebbleIssuer, randomName } from '../helpers/acme-hub.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { runCli, startHubProcess } from '../helpers/cli.ts';
import { startPebble } from '../helpers/pebble.ts';
import { tempDir } from '../helpers/tmp.ts';
import { assertOpensslVerifies } from '../helpers/openssl-verify.ts';

test('certfleet CLI against a hub process with a Pebble issuer (CERTFLEET_HUB_CONFIG)', async (t) => {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const dir = await tempDir(t);
  const configPath = join(dir, 'hub.yaml');
  await writeFile(
    configPath,
    stringify({
      issuers: [pebbleIssuer(pebble, await pebbleCaFile(t, pebble))],
      http01: { listen: `127.0.0.1:${pebble.httpPort}` },
      planner: { intervalSeconds: 3600 },
    }),
  );
  const hub = await startHubProcess(t, { CERTFLEET_HUB_CONFIG: configPath });
  const name = randomName('cli-');

  const add = await runCli(['cert', 'add', 'site', '--issuer', 'pebble', '--san', name], hub.env);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /created certificate site/);

  const pem = await runCli(['cert', 'show', 'site', '--pem'], hub.env);
  assert.equal(pem.code, 0, pem.stderr);
  const [leaf, ...chain] = splitPemCertificates(pem.stdout);
  await assertOpensslVerifies(leaf, chain, await pebble.issuingRootPem());

  const plan = await runCli(['plan'], hub.env);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /^CERTIFICATE\s+DUE AT/);
  assert.match(plan.stdout, /site\s.*NotDue/);
  const planJson = await runCli(['plan', '--json'], hub.env);
  assert.equal(JSON.parse(planJson.stdout).entries[0].certificateName, 'site');

  const dry = await runCli(['renew', 'site', '--dry-run'], hub.env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /nothing is stored/);
  for (const step of ['account', 'order', 'authorizations', 'challenge', 'finalize', 'download'])
    assert.match(dry.stdout, new RegExp(`^${step}\\s+\\d+`, 'm'));

  const revoke = await runCli(['cert', 'revoke', 'site', '--reason', 'keyCompromise'], hub.env);
  assert.equal(revoke.code, 0, revoke.stderr);
  assert.match(revoke.stdout, /revoked site: serial \S+ \(keyCompromise\)/);
  assert.match(revoke.stdout, /replaced by serial/);

  const bad = await runCli(['cert', 'add', 'nope', '--issuer', 'nosuch', '--san', randomName()], hub.env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /issuer "nosuch" is not configured\nhint: use one of: internal, pebble/);
});
