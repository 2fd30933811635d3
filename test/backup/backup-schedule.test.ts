/**
 * Scheduled backups (`backup:` in the hub config) on an injected clock: a backup is taken when the interval has
 * passed, verified right after it is written, old ones pruned to the retention; the metric shows the last verified
 * time; the backup alert fires when the last one failed or none is recent enough, and resolves after a good one.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { BackupScheduler, backupHubConfigShape } from '../../src/backup/backup-schedule.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { createVerification } from '../../src/hub/verification.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';

const MINUTE = 60_000;

test('scheduled backups: due by the clock, verified after writing, pruned; metric and alert follow', async (t) => {
  const clock = new ManualClock('2026-03-01T00:00:00Z');
  const hub = await startTestHub(t, { clock });
  await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.internal.test'] });
  const directory = join(await tempDir(t), 'backups');
  const identity = await generateX25519Identity();
  const idFile = join(await tempDir(t), 'id.txt');
  await writeFile(idFile, `${identity}\n`, { mode: 0o600 });
  const config = backupHubConfigShape.backup.parse({
    directory,
    recipients: [await identityToRecipient(identity)],
    intervalMinutes: 60,
    retention: 2,
  })!;
  const verification = createVerification(hub.ctx, { backup: config });
  onCleanup(t, () => verification.stop());
  // as the hub wires it (src/hub/hub.ts)
  const onFailure = () => verification.metrics.backupFailures.inc();
  const scheduler = new BackupScheduler(hub.ctx, config, {
    dataDir: hub.dataDir,
    env: {},
    onFailure,
  });
  onCleanup(t, () => scheduler.stop());
  const firing = async () =>
    (await verification.alerts.firing())
      .map((a) => a.key)
      .filter((k) => k.startsWith('backup'))
      .sort();
  const lastVerifiedMetric = async () =>
    Number(
      /^certfleet_backup_last_verified_timestamp_seconds (\S+)$/m.exec(await verification.metrics.text())![1],
    );

  assert.equal(await lastVerifiedMetric(), 0, 'never verified');
  const first = await scheduler.runDue();
  assert.equal(first?.ok, true, first?.error);
  assert.equal(await lastVerifiedMetric(), Date.parse('2026-03-01T00:00:00Z') / 1000);
  assert.deepEqual(await readdir(directory), ['certfleet-backup-2026-03-01T00-00-00-000Z.age']);

  clock.advance(59 * MINUTE);
  assert.equal(await scheduler.runDue(), undefined, 'not due before the interval');
  clock.advance(MINUTE);
  assert.equal((await scheduler.runDue())?.ok, true);
  clock.advance(60 * MINUTE);
  assert.equal((await scheduler.runDue())?.ok, true);
  assert.deepEqual(
    (await readdir(directory)).sort(),
    ['certfleet-backup-2026-03-01T01-00-00-000Z.age', 'certfleet-backup-2026-03-01T02-00-00-000Z.age'],
    'retention 2 keeps the newest two',
  );
  assert.deepEqual(await firing(), []);

  // The kept file opens with the recipient's identity through the real binary, not only inside the hub.
  const verified = await runCli([
    'backup',
    'verify',
    join(directory, 'certfleet-backup-2026-03-01T02-00-00-000Z.age'),
    '--identity',
    idFile,
  ]);
  assert.equal(verified.code, 0, verified.stderr);
  assert.match(verified.stdout, /1 certificates, 1 versions, 0 ACME accounts: all checks passed/);

  // Where the backups go is now a file (a full or broken disk looks the same to the hub): the run fails, is
  // counted, leaves no file, and the alert fires at once.
  const broken = join(await tempDir(t), 'not-a-directory');
  await writeFile(broken, 'a file where the backup directory should be');
  const blocked = new BackupScheduler(
    hub.ctx,
    { ...config, directory: broken },
    {
      dataDir: hub.dataDir,
      env: {},
      onFailure,
    },
  );
  clock.advance(60 * MINUTE);
  const failed = await blocked.runDue();
  assert.equal(failed?.ok, false);
  assert.match(failed!.error!, /EEXIST|ENOTDIR/);
  assert.deepEqual(await firing(), ['backup_failed']);
  assert.match(await verification.metrics.text(), /^certfleet_backup_failures_total 1$/m);

  // The next good backup resolves it; then nothing for longer than twice the interval: stale.
  clock.advance(60 * MINUTE);
  assert.equal((await scheduler.runDue())?.ok, true);
  assert.deepEqual(await firing(), []);
  clock.advance(2 * 60 * MINUTE);
  assert.deepEqual(await firing(), ['backup_stale']);
});
