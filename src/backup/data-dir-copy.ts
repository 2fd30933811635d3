import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import { DATABASE_FILE, openDataDir } from '../hub/data-dir.ts';
import { checkStore, type StoreCheckReport } from '../hub/store-check.ts';
import { loadMasterKey } from '../store/sealing.ts';
import { PART, type BackupManifest, type BackupParts } from './backup-format.ts';

/**
 * A data directory made from backup parts (the database, `master.key`, the hub config) and the check of it. Backup
 * create, verify and restore all go through here, so what a backup promises is checked the same way each time:
 * by `checkStore` (src/hub/store-check.ts) on the copy, never by a second set of checks.
 */

/** Where a restored hub config is written inside the data directory. */
export const RESTORED_HUB_CONFIG = 'hub.yaml';

/** Writes the parts into `dir`, which must not exist yet: 0700 directory, 0600 files. */
export async function writeDataDir(dir: string, parts: BackupParts): Promise<void> {
  await mkdir(dir, { mode: 0o700 });
  const files: Array<[string, Buffer | undefined]> = [
    [DATABASE_FILE, parts[PART.database]],
    ['master.key', parts[PART.masterKey]],
    [RESTORED_HUB_CONFIG, parts[PART.hubConfig]],
  ];
  for (const [name, bytes] of files) {
    if (bytes) await writeFile(join(dir, name), bytes, { mode: 0o600, flag: 'wx' });
  }
}

/**
 * Checks a data directory copy with its own master.key (the environment's CERTFLEET_MASTER_KEY is ignored: a copy
 * must open with what it holds) and, given a manifest, compares what it holds with what the manifest recorded.
 */
export async function checkDataDirCopy(
  dir: string,
  logger: Logger,
  manifest?: BackupManifest,
): Promise<StoreCheckReport> {
  const env = {};
  const { store, sealer } = await openDataDir({
    dataDir: dir,
    env,
    logger,
    clock: systemClock,
    create: false,
  });
  let report: StoreCheckReport;
  try {
    report = await checkStore(store, sealer, { masterKey: await loadMasterKey(dir, env, { create: false }) });
  } finally {
    await store.close();
  }
  if (!manifest) return report;
  for (const [what, n] of Object.entries(report.counts)) {
    const expected = manifest.counts[what as keyof StoreCheckReport['counts']];
    if (expected === undefined) continue; // a count the certfleet that made the backup did not record yet
    report.rows.push({
      item: `manifest: ${what}`,
      key: 'manifest.counts',
      ok: expected === n,
      detail: expected === n ? `${n}, as recorded` : `${n} restored, ${expected} recorded`,
    });
  }
  report.ok = report.rows.every((r) => r.ok);
  return report;
}

/** Runs `fn` in a fresh private temp directory (0700) that is removed afterwards, whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>, logger: Logger): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-backup-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true }).catch((e: unknown) =>
      logger.warn({ path: dir, err: (e as Error).message }, 'could not remove a temporary backup directory'),
    );
  }
}
