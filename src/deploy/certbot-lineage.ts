import { join, resolve } from 'node:path';
import type { OutputSpec, Subscription } from '../core/types.ts';

/**
 * certbot compatibility: a subscription with `certbotLineage: DIR` gets the four files of a certbot lineage
 * (`/etc/letsencrypt/live/NAME`) written into DIR, and its hooks see `RENEWED_LINEAGE=DIR`, so an existing
 * certbot deploy hook runs unchanged. certbot's files are symlinks into `archive/`; these are plain files, which
 * is what every consumer of a lineage reads.
 */
export const LINEAGE_FILES: ReadonlyArray<{ name: string; format: string }> = [
  { name: 'cert.pem', format: 'cert' },
  { name: 'privkey.pem', format: 'key' },
  { name: 'chain.pem', format: 'chain' },
  { name: 'fullchain.pem', format: 'fullchain' },
];

/** The lineage's outputs (the formats' default modes: privkey.pem 0600, the rest 0644). */
export function lineageOutputs(dir: string): OutputSpec[] {
  return LINEAGE_FILES.map((f) => ({ path: join(resolve(dir), f.name), format: f.format }));
}

/** Every file a subscription writes: its outputs, then its certbot lineage's four files. */
export function deployOutputs(sub: Pick<Subscription, 'outputs' | 'certbotLineage'>): OutputSpec[] {
  return [...sub.outputs, ...(sub.certbotLineage ? lineageOutputs(sub.certbotLineage) : [])];
}
