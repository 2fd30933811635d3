import { dirname, resolve } from 'node:path';
import type { Subscription } from '../core/types.ts';
import { deployOutputs } from '../deploy/certbot-lineage.ts';

/** The directories a subscription writes into: what `recoverPendingWrites` must sweep before deploying to them. */
export function outputDirs(subscription: Pick<Subscription, 'outputs' | 'certbotLineage'>): string[] {
  return [...new Set(deployOutputs(subscription).map((o) => dirname(resolve(o.path))))];
}
