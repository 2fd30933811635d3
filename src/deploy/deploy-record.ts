import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { DeployTarget, PreviousFile } from './deploy-target.ts';
import type { ReportedState } from './states.ts';

/**
 * What the pipeline remembers per subscription on a target (DeployTarget.loadRecord / saveRecord): which version
 * it staged, the SHA-256 of every file it wrote (so a re-invocation, e.g. after `waiting_window`, can tell the
 * files are still in place without re-rendering formats with random salts), and the files that were there
 * before, so a rollback still works after a restart. The previous files include the old private key: a target
 * keeps the record private (the agent: 0600 in its state directory) and the pipeline drops them once the new
 * version is verified.
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

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
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

/** True when the record is about this version (same id and leaf). */
export function recordsVersion(
  record: DeployRecord | undefined,
  version: { versionId: string; fingerprint: string },
): record is DeployRecord {
  return !!record && record.versionId === version.versionId && record.fingerprint === version.fingerprint;
}

/**
 * True when `record` staged this version completely (not mid-write, not rolled back) and every output is still on
 * the target with exactly the bytes written: a deploy need not write them again.
 */
export async function stagedInPlace(
  target: Pick<DeployTarget, 'readCurrent'>,
  record: DeployRecord | undefined,
  version: { versionId: string; fingerprint: string },
  paths: string[],
): Promise<boolean> {
  if (!recordsVersion(record, version) || record.state === 'writing' || record.state === 'rolled_back')
    return false;
  const wanted = paths.map((p) => resolve(p));
  if (record.outputs.length !== wanted.length || record.outputs.some((o, i) => o.path !== wanted[i]))
    return false;
  try {
    const now = await target.readCurrent(wanted);
    return now.every((f, i) => f.previous !== 'absent' && sha256(f.previous) === record.outputs[i].sha256);
  } catch {
    return false; // unreadable or refused: write again (the write reports what is wrong)
  }
}
