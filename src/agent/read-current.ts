import { lstat, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { PreviousFile } from '../deploy/deploy-target.ts';
import { resolveOutputPath } from './atomic-write.ts';

/**
 * Reads what the targets hold now (as writeFilesAtomic would), for a rollback. Through the same directory checks
 * as the write: a path another user could steer is refused here already, before anything is read through it.
 */
export async function readCurrentFiles(paths: string[], signal?: AbortSignal): Promise<PreviousFile[]> {
  const out: PreviousFile[] = [];
  for (const p of paths) {
    const path = resolve(p);
    const real = await resolveOutputPath(path);
    try {
      const st = await lstat(real);
      // Not a regular file: writeFilesAtomic refuses it with a proper error before touching anything.
      if (!st.isFile()) {
        out.push({ path, previous: 'absent' });
        continue;
      }
      out.push({
        path,
        previous: await readFile(real, { signal }),
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      out.push({ path, previous: 'absent' });
    }
  }
  return out;
}
