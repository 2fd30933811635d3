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
  const caFile = await pebbleCaFile(t, pebble);
  await writeFile(
    configPath,
    stringify({
      issuers: [
        pebbleIssuer(pebble, caFile),
        // Its own account (another URL for the same Pebble) with room for one new order.
        pebbleIssuer(pebble, caFile, {
          name: 'tiny',
          directoryUrl: pebble.directoryUrl.replace('localhost', '127.0.0.1'),
          rateLimits: { limits: { NewOrdersPerAccount: { count: 1, windowSeconds: 3600 } } },
        }),
      ],
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

  // A first issuance goes through the budget: counted, and refused once the issuer's budget is spent.
  const one = await runCli(['cert', 'add', 'tiny-one', '--issuer', 'tiny', '--san', randomName()], hub.env);
  assert.equal(one.code, 0, one.stderr);
  const two = await runCli(['cert', 'add', 'tiny-two', '--issuer', 'tiny', '--san', randomName()], hub.env);
  assert.equal(two.code, 1, two.stdout);
  assert.match(two.stderr, /New Orders per Account allows 1 per .*\nhint: wait until the limit frees/);
  const shown = await runCli(['cert', 'show', 'tiny-two'], hub.env);
  assert.match(shown.stderr, /certificate "tiny-two" not found/, 'no certificate was left behind');

  const bad = await runCli(['cert', 'add', 'nope', '--issuer', 'nosuch', '--san', randomName()], hub.env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /issuer "nosuch" is not configured\nhint: use one of: internal, pebble, tiny/);
});
