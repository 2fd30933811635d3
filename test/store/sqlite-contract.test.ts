/** The Store contract (test/store/contract/store-contract.ts) against the embedded SQLite dialect. */
import { join } from 'node:path';
import { ManualClock } from '../../src/core/clock.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';
import { tempDir } from '../helpers/tmp.ts';
import { storeContract } from './contract/store-contract.ts';
import { onCleanup } from '../helpers/cleanup.ts';

storeContract('SQLite', async (t) => {
  const dir = await tempDir(t);
  const store = await openSqliteStore(join(dir, 'hub.db'), new ManualClock(Date.now()));
  onCleanup(t, () => store.close());
  return store;
});

// The rehearsal's scratch store: the same contract with the file locked by this process alone.
storeContract('SQLite, exclusive locking', async (t) => {
  const dir = await tempDir(t);
  const store = await openSqliteStore(join(dir, 'hub.db'), new ManualClock(Date.now()), { exclusive: true });
  onCleanup(t, () => store.close());
  return store;
});
