import type { DeployRun } from '../deploy-run.ts';
import type { DeployOutcome } from '../deploy-contract.ts';

/**
 * change window: outside it the files stay staged and the reload waits (`waiting_window` with `nextWindowAt`);
 * the caller deploys the same request again then. `req.overrideWindow` (`--now`) reloads anyway.
 */
export async function window(d: DeployRun): Promise<DeployOutcome | undefined> {
  if (!d.mustWait()) return undefined;
  const { nextWindowAt } = d.waiting();
  await d.updateRecord({ state: 'waiting_window', nextWindowAt });
  await d.emit('waiting_window', 'change_window', { nextWindowAt, window: d.sub.window });
  return d.waiting();
}
