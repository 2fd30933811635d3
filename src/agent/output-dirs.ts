import { dirname, resolve } from 'node:path';
import type { Subscription } from '../core/types.ts';

/** The directories a subscription writes into: what `recoverPendingWrites` must sweep before deploying to them. */
export function outputDirs(subscription: Pick<Subscription, 'outputs'>): string[] {
  return [...new Set(subscription.outputs.map((o) => dirname(resolve(o.path))))];
}
