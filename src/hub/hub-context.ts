import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import type { InternalCa } from '../issuers/internal/internal-ca.ts';
import type { Issuer } from '../issuers/issuer.ts';
import type { Sealer } from '../store/sealing.ts';
import type { Store } from '../store/store.ts';

/** What every hub module is given: built once at the composition root (src/hub/hub.ts), swapped in tests. */
export interface HubContext {
  /** Never replaced after construction: reactions to its changes subscribe to `store.events`. */
  readonly store: Store;
  sealer: Sealer;
  clock: Clock;
  logger: Logger;
  internalCa: InternalCa;
  /** Issuers by the name certificates refer to; 'internal' is always present. */
  issuers: Map<string, Issuer>;
}
