import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ReportedState } from '../deploy/states.ts';
import { resolveOutputPath, writeFileAtomic, type PreviousFile } from './atomic-write.ts';

/**
 * What the deployer remembers per subscription in `<stateDir>/deploys/<subscription>.json` (0600): which version
 * it staged, the SHA-256 of every file it wrote (so a re-invocation, e.g. after `waiting_window`, can tell the
 * files are still in place without re-rendering formats with random salts), and the files that were there
 * before, so a rollback still works after an agent restart. The previous files include the old private key; the
 * record lives in the agent's private state directory and drops them once the new version is verified.
 */
export type RecordState =
  | 'writing' // files being replaced: not a deployment state, never reported
  | Extract<ReportedState, 'installed' | 'waiting_window' | 'reloaded' | 'verified' | 'rolled_back'>;

export interface DeployRecord {
  subscriptionId: string;
  versionId: string;
  fingerprint: string;
  state: RecordState;
  updatedAt: string;
  outputs: Array<{ path: string; sha256: string }>;
  previous: Array<{ path: string; previous: string | 'absent'; mode?: number; uid?: number; gid?: number }>;
  /** Last waiting_window report, so a re-check before the window does not report it again. */
  nextWindowAt?: string;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** One file per subscription; ids that are not plain names are hashed, so no id can escape the directory. */
export function recordPath(stateDir: string, subscriptionId: string): string {
  const name = /^[A-Za-z0-9_-]{1,100}$/.test(subscriptionId)
    ? subscriptionId
    : sha256(Buffer.from(subscriptionId));
  return join(resolve(stateDir), 'deploys', `${name}.json`);
}

export async function loadRecord(
  stateDir: string,
  subscriptionId: string,
): Promise<DeployRecord | undefined> {
  try {
    const doc = JSON.parse(await readFile(recordPath(stateDir, subscriptionId), 'utf8')) as DeployRecord;
    return doc?.subscriptionId === subscriptionId && Array.isArray(doc.outputs) ? doc : undefined;
  } catch {
    return undefined; // absent or unreadable: behave as if nothing was staged (files are rewritten)
  }
}

export async function saveRecord(
  stateDir: string,
  record: DeployRecord,
  signal?: AbortSignal,
): Promise<void> {
  const path = recordPath(stateDir, record.subscriptionId);
  await mkdir(join(resolve(stateDir), 'deploys'), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, JSON.stringify(record), { mode: 0o600, signal });
}

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

export function encodePrevious(files: PreviousFile[]): DeployRecord['previous'] {
  return files.map((f) => ({
    ...f,
    previous: f.previous === 'absent' ? 'absent' : f.previous.toString('base64'),
  }));
}

export function decodePrevious(files: DeployRecord['previous']): PreviousFile[] {
  return files.map((f) => ({
    ...f,
    previous: f.previous === 'absent' ? 'absent' : Buffer.from(f.previous, 'base64'),
  }));
}

/** True when every recorded output is on disk with exactly the bytes written. */
export async function filesStillInPlace(record: DeployRecord, paths: string[]): Promise<boolean> {
  const wanted = paths.map((p) => resolve(p));
  if (record.outputs.length !== wanted.length) return false;
  for (const [i, o] of record.outputs.entries()) {
    if (o.path !== wanted[i]) return false;
    try {
      if (sha256(await readFile(o.path)) !== o.sha256) return false;
    } catch {
      return false;
    }
  }
  return true;
}
