/**
 * A hub that reads its master key from CERTFLEET_MASTER_KEY: `certfleet backup create` needs that key (it is what
 * opens the store), puts it in the backup, and the restored data directory opens with its own master.key, without
 * the variable.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { ageIdentity } from '../helpers/age.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';

/** runCli adds process.env; an undefined value keeps the variable out of the child's environment. */
const NO_MASTER_KEY_ENV = { CERTFLEET_MASTER_KEY: undefined };

test('a hub on CERTFLEET_MASTER_KEY: the backup holds the key, and the restored directory opens without the variable', async (t) => {
  const masterKey = randomBytes(32).toString('hex');
  const hub = await startTestHub(t, { env: { CERTFLEET_MASTER_KEY: masterKey } });
  await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.internal.test'] });
  const work = await tempDir(t);
  const key = await ageIdentity(work);
  const out = join(work, 'b.age');
  const noKey = await runCli(
    ['backup', 'create', '--data-dir', hub.dataDir, '--out', out, '--recipient', key.recipient],
    NO_MASTER_KEY_ENV,
  );
  assert.equal(noKey.code, 1, 'without the key the hub runs with, there is nothing to back up with');
  assert.match(noKey.stderr, /no master key/);
  assert.match(noKey.stderr, /hint: set CERTFLEET_MASTER_KEY/);

  const created = await runCli(
    ['backup', 'create', '--data-dir', hub.dataDir, '--out', out, '--recipient', key.recipient, '--json'],
    { CERTFLEET_MASTER_KEY: masterKey },
  );
  assert.equal(created.code, 0, created.stderr);
  assert.equal(JSON.parse(created.stdout).manifest.masterKeySource, 'env');
  const target = join(work, 'data');
  const restored = await runCli(
    ['backup', 'restore', out, '--data-dir', target, '--identity', key.file],
    NO_MASTER_KEY_ENV,
  );
  assert.equal(restored.code, 0, restored.stdout + restored.stderr);
  const checked = await runCli(['hub', 'check-store', '--data-dir', target], NO_MASTER_KEY_ENV);
  assert.equal(checked.code, 0, checked.stdout + checked.stderr);
  assert.match(checked.stdout, /1 certificates, 1 versions/);
});
