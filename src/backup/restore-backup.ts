import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Clock } from '../core/clock.ts';
import { CertfleetError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { StoreCheckReport } from '../hub/store-check.ts';
import { decryptBackup, type OpenWith } from './age-crypt.ts';
import { decodeBackup, type BackupManifest, type BackupParts } from './backup-format.ts';
import { checkDataDirCopy, RESTORED_HUB_CONFIG, withTempDir, writeDataDir } from './data-dir-copy.ts';

/** Reads, decrypts and decodes a backup file; nothing is written. */
export async function openBackup(
  file: string,
  using: OpenWith,
): Promise<{ manifest: BackupManifest; parts: BackupParts }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new CertfleetError(
      'NOT_FOUND',
      `cannot read the backup ${file} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      'check the path of the backup file',
    );
  }
  const what = `backup ${basename(file)}`;
  return decodeBackup(await decryptBackup(bytes, using, what), what);
}

export interface VerifyResult {
  manifest: BackupManifest;
  report: StoreCheckReport;
}

/**
 * `certfleet backup verify`: decrypts, restores into a temporary data directory, runs the store check on it and
 * compares what it holds with the manifest. The temporary directory is removed whatever the outcome.
 */
export async function verifyBackup(opts: {
  file: string;
  using: OpenWith;
  logger: Logger;
}): Promise<VerifyResult> {
  const { manifest, parts } = await openBackup(opts.file, opts.using);
  return withTempDir(async (tmp) => {
    const dir = join(tmp, 'data');
    await writeDataDir(dir, parts);
    return { manifest, report: await checkDataDirCopy(dir, opts.logger, manifest) };
  }, opts.logger);
}

export interface RestoreResult extends VerifyResult {
  dataDir: string;
  /** Where the directory that was there before went (with --force). */
  movedAside?: string;
  /** The restored hub config, when the backup held one. */
  hubConfigPath?: string;
}

/**
 * `certfleet backup restore`: into a new data directory, atomically. The backup is restored into a sibling temp
 * directory and checked there; only a copy that passes is renamed into place. A non-empty target is refused
 * unless `force`, and then moved aside (never deleted) before the new one is renamed in. On a failed check the
 * temp directory is removed and the target is as it was.
 */
export async function restoreBackup(opts: {
  file: string;
  dataDir: string;
  using: OpenWith;
  force: boolean;
  clock: Clock;
  logger: Logger;
}): Promise<RestoreResult> {
  const target = resolve(opts.dataDir);
  await assertRestorable(target, opts.force); // before the slow decryption, and again before the swap
  const { manifest, parts } = await openBackup(opts.file, opts.using);
  const staging = join(dirname(target), `.${basename(target)}.restoring-${randomBytes(4).toString('hex')}`);
  await mkdir(dirname(target), { recursive: true, mode: 0o700 });
  try {
    await writeDataDir(staging, parts);
    const report = await checkDataDirCopy(staging, opts.logger, manifest);
    if (!report.ok) return { manifest, report, dataDir: target };
    const state = await assertRestorable(target, opts.force);
    let movedAside: string | undefined;
    if (state === 'non-empty') {
      movedAside = `${target}.before-restore-${opts.clock.now().toISOString().replace(/[:.]/g, '-')}`;
      await rename(target, movedAside);
    } else if (state === 'empty') await rmdir(target);
    try {
      await rename(staging, target);
    } catch (e) {
      if (movedAside) await rename(movedAside, target).catch(() => undefined);
      throw e;
    }
    return {
      manifest,
      report,
      dataDir: target,
      ...(movedAside ? { movedAside } : {}),
      ...(parts['hub.yaml'] ? { hubConfigPath: join(target, RESTORED_HUB_CONFIG) } : {}),
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Whether the target is missing, empty, or holds something (refused without `force`). */
async function assertRestorable(target: string, force: boolean): Promise<'missing' | 'empty' | 'non-empty'> {
  let entries: string[];
  try {
    entries = await readdir(target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    if (code === 'ENOTDIR') {
      throw new CertfleetError(
        'ALREADY_EXISTS',
        `${target} exists and is not a directory`,
        'pass --data-dir with a new directory',
      );
    }
    throw e;
  }
  if (entries.length === 0) return 'empty';
  if (!force) {
    throw new CertfleetError(
      'ALREADY_EXISTS',
      `the data directory ${target} is not empty; nothing was restored`,
      'restore into a new directory, or pass --force to move the existing one aside (it is kept, renamed to <dir>.before-restore-<time>); stop any hub using it first',
    );
  }
  return 'non-empty';
}
