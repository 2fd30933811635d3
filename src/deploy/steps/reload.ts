import { commandDetail, type DeployRun } from '../deploy-run.ts';
import type { DeployOutcome } from '../deploy-contract.ts';
import { rollback } from './rollback.ts';

/** reload → `reloaded`. A failed reload may have half-applied: restore, then reload again (`rolled_back`). */
export async function reload(d: DeployRun): Promise<DeployOutcome | undefined> {
  if (!d.sub.reload) return undefined;
  const r = await d.runCommand('reload', d.sub.reload);
  if (!r.ok) return rollback(d, 'reload', { ...commandDetail('reload', r), ...d.overrideDetail() }, true);
  await d.updateRecord({ state: 'reloaded' });
  await d.emit('reloaded', undefined, { durationMs: r.durationMs, ...d.overrideDetail() });
  d.lastState = 'reloaded';
  return undefined;
}
