import { systemClock, type Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import { BOOTSTRAP_TOKEN_NAME, newAdminToken } from './auth.ts';
import { removeAdminTokenFile } from './admin-token-file.ts';
import { openDataDir } from './data-dir.ts';

export const RESET_ADMIN_TOKEN_ACTOR = 'cli:reset-admin-token';

/**
 * Replaces the bootstrap admin token of a hub data directory, for when it is lost or leaked: revokes every admin
 * token named `bootstrap` and creates a new one, in one transaction with audit events. Needs the master key (the
 * proof of being the hub's operator, not only a reader of its files) and creates nothing in a directory no hub
 * has initialised. Safe while the hub runs: SQLite in WAL mode takes the write, and the hub looks tokens up in the
 * store on every request, so the new token works, and the old one stops working, at once. The first start's
 * `admin-token` file, if still there, holds a revoked token afterwards and is removed.
 */
export async function resetAdminToken(opts: {
  dataDir: string;
  databaseUrl?: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  clock?: Clock;
}): Promise<{ token: string; revoked: number }> {
  const { store } = await openDataDir({ ...opts, clock: opts.clock ?? systemClock, create: false });
  try {
    const { token, record } = newAdminToken();
    const { revoked } = await store.replaceTokens(
      { kind: 'admin', name: BOOTSTRAP_TOKEN_NAME },
      record,
      RESET_ADMIN_TOKEN_ACTOR,
    );
    await removeAdminTokenFile(opts.dataDir);
    return { token, revoked };
  } finally {
    await store.close();
  }
}
