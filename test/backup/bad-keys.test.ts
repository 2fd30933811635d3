/**
 * Backups opened with the wrong key, through the real binary: the wrong identity, the wrong passphrase, a passphrase
 * for a recipient backup. Each is a clear error with a hint and no stack trace; nothing is restored; the source hub
 * keeps running untouched. (A right passphrase opens its backup: that is proven here too, once.)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ageIdentity } from '../helpers/age.ts';
import { backupFixture } from '../helpers/backup.ts';
import { runCli } from '../helpers/cli.ts';

test('the wrong identity or passphrase opens nothing, and says which one to use', async (t) => {
  const { hub, work, good, write, refused } = await backupFixture(t);
  const eventsBefore = await hub.ctx.store.listEvents({ limit: 1000 });
  const stranger = await ageIdentity(work, 'stranger.txt');
  await refused(
    good,
    ['--identity', stranger.file],
    /the identity does not open backup good\.age/,
    /hint: use the identity file of a recipient the backup was made for/,
  );

  const pass = await write('pass', 'right one\n');
  const wrong = await write('wrong', 'wrong one\n');
  const byPass = join(work, 'pass.age');
  const made = await runCli([
    'backup',
    'create',
    '--data-dir',
    hub.dataDir,
    '--out',
    byPass,
    '--passphrase-file',
    pass,
  ]);
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stdout, /backup written to .*pass\.age \(\d+ bytes, passphrase\)/);
  await refused(
    byPass,
    ['--passphrase-file', wrong],
    /the passphrase does not open backup pass\.age/,
    /hint: use the passphrase file the backup was made with/,
  );
  await refused(
    good,
    ['--passphrase-file', pass],
    /the passphrase does not open backup good\.age/,
    /hint: .*--identity/,
  );
  const opened = await runCli(['backup', 'verify', byPass, '--passphrase-file', pass]);
  assert.equal(opened.code, 0, opened.stdout + opened.stderr);
  assert.match(opened.stdout, /1 certificates, 1 versions, 0 ACME accounts: all checks passed/);

  assert.deepEqual(
    await hub.ctx.store.listEvents({ limit: 1000 }),
    eventsBefore,
    'the source hub is untouched',
  );
  assert.equal((await hub.client.get<unknown[]>('/api/v1/certificates')).length, 1, 'and still serving');
});
