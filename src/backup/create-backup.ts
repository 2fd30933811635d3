import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../core/clock.ts';
import { CertfleetError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { writePrivateFile } from '../core/private-file.ts';
import { assertHubDataDir, DATABASE_FILE } from '../hub/data-dir.ts';
import { loadMasterKey } from '../store/sealing.ts';
import { encryptBackup, type SealTo } from './age-crypt.ts';
import {
  certfleetVersion,
  encodeBackup,
  PART,
  type BackupManifest,
  type BackupParts,
} from './backup-format.ts';
import { checkDataDirCopy, withTempDir, writeDataDir } from './data-dir-copy.ts';
import { appliedMigrations, snapshotSqlite } from './sqlite-snapshot.ts';

export interface CreateBackupOptions {
  dataDir: string;
  /** The backup file; written atomically (temp + rename), 0600. */
  out: string;
  sealTo: SealTo;
  /** The hub config file to include. */
  hubConfigPath?: string;
  /** Where the master key comes from, as for the hub: CERTFLEET_MASTER_KEY, else `<dataDir>/master.key`. */
  env: NodeJS.ProcessEnv;
  clock: Clock;
  logger: Logger;
}

/**
 * `certfleet backup create` and each scheduled backup: an online snapshot of the store (the hub keeps running), the
 * master key that opens it (whether the hub reads it from master.key or CERTFLEET_MASTER_KEY: a backup restores
 * with nothing but its age identity or passphrase), the hub config when given, and a manifest; one age file.
 * The snapshot is checked (checkStore) before it is written out, and a snapshot that fails is refused.
 */
export async function createBackup(
  opts: CreateBackupOptions,
): Promise<{ manifest: BackupManifest; bytes: number }> {
  await assertHubDataDir(opts.dataDir);
  const masterKey = await loadMasterKey(opts.dataDir, opts.env, { create: false });
  const hubConfig = opts.hubConfigPath ? await readHubConfig(opts.hubConfigPath) : undefined;
  const createdAt = opts.clock.now().toISOString();

  const { payload, manifest } = await withTempDir(async (tmp) => {
    const copy = join(tmp, 'copy');
    const parts: BackupParts = { [PART.masterKey]: Buffer.from(`${masterKey.toString('hex')}\n`) };
    await writeDataDir(copy, parts);
    await snapshotSqlite(join(opts.dataDir, DATABASE_FILE), join(copy, DATABASE_FILE));
    const check = await checkDataDirCopy(copy, opts.logger);
    if (!check.ok) {
      const failed = check.rows.filter((r) => !r.ok);
      throw new CertfleetError(
        'BACKUP_INVALID',
        `the store in ${opts.dataDir} fails its check, so no backup was written: ${failed
          .slice(0, 3)
          .map((r) => `${r.key}: ${r.detail}`)
          .join('; ')}${failed.length > 3 ? ` (and ${failed.length - 3} more)` : ''}`,
        `see every failed item with \`certfleet hub check-store --data-dir ${opts.dataDir}\`; back up an earlier copy meanwhile`,
      );
    }
    // Read after the check closed its connection: SQLite has folded its WAL into the file by then.
    parts[PART.database] = await readFile(join(copy, DATABASE_FILE));
    if (hubConfig) parts[PART.hubConfig] = hubConfig;
    return encodeBackup(
      {
        certfleetVersion,
        createdAt,
        schema: { dialect: 'sqlite', migrations: appliedMigrations(join(copy, DATABASE_FILE)) },
        masterKeySource: opts.env.CERTFLEET_MASTER_KEY !== undefined ? 'env' : 'file',
        counts: check.counts,
      },
      parts,
    );
  }, opts.logger);

  const encrypted = await encryptBackup(payload, opts.sealTo);
  try {
    await writePrivateFile(opts.out, encrypted);
  } catch (e) {
    throw new CertfleetError(
      'OUTPUT_WRITE_FAILED',
      `cannot write the backup to ${opts.out} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      'pass --out with a path in an existing, writable directory',
    );
  }
  opts.logger.info(
    { file: opts.out, bytes: encrypted.length, certificates: manifest.counts.certificates },
    'backup written',
  );
  return { manifest, bytes: encrypted.length };
}

async function readHubConfig(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `cannot read the hub config ${path} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      'pass --hub-config with the file the hub runs with, or leave it out',
    );
  }
}
