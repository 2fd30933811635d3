import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { sha256, type DeployRecord } from '../deploy/deploy-record.ts';
import { writeFileAtomic } from './atomic-write.ts';

/**
 * The local target's deploy records (src/deploy/deploy-record.ts): one file per subscription in
 * `<stateDir>/deploys/<subscription>.json`, 0600 in a 0700 directory, since they hold the previous private key.
 */

/** One file per subscription; ids that are not plain names are hashed, so no id can escape the directory. */
export function recordPath(stateDir: string, subscriptionId: string): string {
  const name = /^[A-Za-z0-9_-]{1,100}$/.test(subscriptionId) ? subscriptionId : sha256(subscriptionId);
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
