import { commandDetail, type DeployRun } from '../deploy-run.ts';
import type { DeployOutcome } from '../deploy-contract.ts';
import { rollback } from './rollback.ts';

/**
 * config test, against the new files; skipped when they were tested already and the window is still shut (a
 * re-check before the window opens). A failure restores the previous files (`rolled_back`, step `config_test`).
 */
export async function configTest(d: DeployRun): Promise<DeployOutcome | undefined> {
  if (
    d.mustWait() &&
    d.record?.state === 'waiting_window' &&
    d.record.nextWindowAt === d.waiting().nextWindowAt
  )
    return d.waiting();
  if (!d.sub.configTest) return undefined;
  const r = await d.runCommand('config_test', d.sub.configTest);
  return r.ok ? undefined : rollback(d, 'config_test', commandDetail('config_test', r), false);
}
