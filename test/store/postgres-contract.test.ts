/** The Store contract (test/store/contract/store-contract.ts) against the PostgreSQL dialect, on a private cluster. */
import { ManualClock } from '../../src/core/clock.ts';
import { openPostgresStore } from '../../src/store/postgres/open-postgres-store.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { sharedPostgres } from '../helpers/postgres.ts';
import { storeContract } from './contract/store-contract.ts';

const postgres = sharedPostgres();

storeContract('PostgreSQL', async (t) => {
  const store = await openPostgresStore(await postgres.database(), new ManualClock(Date.now()));
  onCleanup(t, () => store.close());
  return store;
});
