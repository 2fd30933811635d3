import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../core/clock.ts';
import { CertfleetError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { restrictMode, type OnModeFix } from '../store/file-mode.ts';
import { loadMasterKey, newWrappedDataKey, Sealer, unwrapDataKey } from '../store/sealing.ts';
import { openSqliteStore } from '../store/sqlite/open-sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { META } from '../store/meta-catalogue.ts';

export const DATABASE_FILE = 'hub.db';

export interface DataDirOptions {
  dataDir: string;
  clock: Clock;
  logger: Logger;
  env: NodeJS.ProcessEnv;
  /** Another store (tests) instead of `<dataDir>/hub.db`. */
  store?: Store;
  /** A postgres:// URL: the store lives in that PostgreSQL database; keys and ca.pem stay in the data directory. */
  databaseUrl?: string;
  /**
   * true (the hub): create what is missing, the data directory, master key and data key included. false (offline
   * tools such as `hub reset-admin-token`): refuse a data directory no hub has initialised, and create nothing.
   */
  create: boolean;
}

/**
 * Opens a hub data directory: the store, unlocked with the data key under the master key. At every open, whatever
 * existed before, the directory is made 0700 and the secret files in it 0600 (each change logged as a warning);
 * the SQLite files are created 0600 in the first place (see openSqliteStore).
 */
export async function openDataDir(opts: DataDirOptions): Promise<{ store: Store; sealer: Sealer }> {
  const { dataDir, logger } = opts;
  if (opts.create) await mkdir(dataDir, { recursive: true, mode: 0o700 });
  else if (!opts.store && !opts.databaseUrl) await assertHubDataDir(dataDir);
  const onModeFix: OnModeFix = (fix) =>
    logger.warn(
      { path: fix.path, mode_was: fix.from, mode_now: fix.to },
      'permissions too open in the data directory; fixed',
    );
  for (const fix of [
    await restrictMode(dataDir, 0o700),
    await restrictMode(join(dataDir, 'master.key'), 0o600),
  ]) {
    if (fix) onModeFix(fix);
  }
  const masterKey = await loadMasterKey(dataDir, opts.env, { create: opts.create });
  const store =
    opts.store ??
    (opts.databaseUrl
      ? await (
          await import('../store/postgres/open-postgres-store.ts')
        ).openPostgresStore(opts.databaseUrl, opts.clock, { logger })
      : await openSqliteStore(join(dataDir, DATABASE_FILE), opts.clock, { onModeFix, logger }));
  try {
    const wrapped = opts.create
      ? (await store.initMeta({ [META.dataKey.key]: newWrappedDataKey(masterKey) }))[META.dataKey.key]
      : await store.getMeta(META.dataKey.key);
    if (wrapped === undefined) {
      throw new CertfleetError(
        'NOT_FOUND',
        `no hub has initialised the data directory ${dataDir}`,
        'start the hub once with this --data-dir (it creates the admin token itself)',
      );
    }
    return { store, sealer: new Sealer(unwrapDataKey(masterKey, wrapped)) };
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** Refuses a directory without a hub database: offline tools must not start a new data directory by mistake. */
export async function assertHubDataDir(dataDir: string): Promise<void> {
  try {
    await stat(join(dataDir, DATABASE_FILE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new CertfleetError(
      'NOT_FOUND',
      `no hub data directory at ${dataDir} (${DATABASE_FILE} not found)`,
      "pass --data-dir with the hub's data directory (the one holding hub.db), or set CERTFLEET_DATA_DIR",
    );
  }
}
