import { chmod, open, rename, rm } from 'node:fs/promises';

/**
 * Writes a file readable by the owner only, atomically: a temp file in the same directory (0600), fsync, rename.
 * A reader sees the old file or the whole new one, never a part; a failed write leaves no temp file behind.
 */
export async function writePrivateFile(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, 0o600); // the umask may have narrowed, never widened, but be explicit
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}
