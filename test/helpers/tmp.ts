import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { onCleanup } from './cleanup.ts';

/** A fresh temp directory, removed when the test ends after everything registered later has stopped. */
export async function tempDir(t: TestContext, prefix = 'certfleet-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onCleanup(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}
