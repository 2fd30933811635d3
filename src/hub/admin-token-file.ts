import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The bootstrap admin token goes to `<data-dir>/admin-token` (0600), never to stdout, stderr or a log line: under
 * systemd both streams are the journal, which more people can read than the data directory. Its path is shown.
 */
export const ADMIN_TOKEN_FILE = 'admin-token';

export const adminTokenPath = (dataDir: string): string => join(dataDir, ADMIN_TOKEN_FILE);

/** Writes the file afresh with mode 0600 (an old file is removed first, so a looser mode is not inherited). */
export async function writeAdminTokenFile(dataDir: string, token: string): Promise<string> {
  const path = adminTokenPath(dataDir);
  await rm(path, { force: true });
  await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return path;
}

/** Removes a file whose token was replaced (`hub reset-admin-token`), so it cannot mislead; true when one existed. */
export async function removeAdminTokenFile(dataDir: string): Promise<boolean> {
  const path = adminTokenPath(dataDir);
  try {
    await rm(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
