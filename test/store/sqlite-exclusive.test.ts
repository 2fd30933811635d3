/** `openSqliteStore(..., { exclusive: true })`: the file is this process's alone while the store is open. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { ManualClock } from '../../src/core/clock.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { tempDir } from '../helpers/tmp.ts';

test('an exclusive store keeps other connections out and its WAL index in memory; closed, the file is ordinary', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'hub.db');
  const store = await openSqliteStore(path, new ManualClock(Date.parse('2027-01-01T00:00:00Z')), {
    exclusive: true,
  });
  let open = true;
  onCleanup(t, () => (open ? store.close() : undefined));
  await store.setMeta('k', 'v');
  assert.equal(existsSync(`${path}-shm`), false, 'no shared-memory index beside the file');

  const other = new BetterSqlite3(path, { timeout: 50 });
  try {
    assert.throws(() => other.prepare('select count(*) from certificates').get(), { code: 'SQLITE_BUSY' });
  } finally {
    other.close();
  }

  await store.close();
  open = false;
  const after = new BetterSqlite3(path, { readonly: true });
  try {
    assert.deepEqual(after.prepare(`select value from meta where key = 'k'`).get(), { value: 'v' });
  } finally {
    after.close();
  }
});
