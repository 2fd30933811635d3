import { errorMessage } from '../../core/errors.ts';
import { commandDetail, type DeployRun } from '../deploy-run.ts';
import type { DeployOutcome } from '../deploy-contract.ts';
import type { CommandStep } from '../deploy-target.ts';

export type FailedStep = CommandStep | 'verify';

/**
 * rollback, after a failed config test, reload or verify: puts the previous files back (all of them, so cert and
 * key always match), reloads again when a reload had already happened (`reloadAgain`), and ends `rolled_back`
 * with the step and its detail. If the rollback fails too, `failed` (reason `rollback_failed`) carries both
 * errors. Runs to the end even when the deploy was cancelled.
 */
export async function rollback(
  d: DeployRun,
  step: FailedStep,
  detail: Record<string, unknown>,
  reloadAgain: boolean,
): Promise<DeployOutcome> {
  if (d.previous.length === 0) {
    // Verified earlier and its previous set dropped: nothing older to go back to.
    return d.fail(step, { ...detail, rollbackError: 'no previous files are kept for this version' });
  }
  if (d.previous.every((p) => p.previous === 'absent')) return failFirstInstall(d, step, detail, reloadAgain);
  let rollbackError: string | undefined;
  try {
    await d.target.restore(d.previous, { hook: d.hook });
  } catch (e) {
    rollbackError = `restoring the previous files failed: ${errorMessage(e)}`;
  }
  if (!rollbackError && reloadAgain && d.sub.reload) {
    const r = await d.runCommand('reload', d.sub.reload, undefined);
    if (!r.ok) {
      rollbackError = `the files were restored, but the reload after restoring ${commandDetail('reload', r).message}: ${r.stderrTail.slice(-500)}`;
    }
  }
  await d.updateRecord({ state: 'rolled_back', previous: [] });
  if (rollbackError) return d.fail('rollback_failed', { ...detail, rollbackError });
  await d.emit('rolled_back', step, detail);
  return { state: 'rolled_back', reason: step, detail };
}

/**
 * A first install (no output existed before) has nothing to roll back to: `failed` with the step as the reason.
 * The new files are removed again when nothing used them yet (config test), and kept once a reload ran: the
 * server's config may already name them, and removing them would break its next start.
 */
async function failFirstInstall(
  d: DeployRun,
  step: FailedStep,
  detail: Record<string, unknown>,
  reloaded: boolean,
): Promise<DeployOutcome> {
  let removeError: string | undefined;
  if (!reloaded) {
    removeError = await d.target.restore(d.previous, { hook: d.hook }).then(
      () => undefined,
      (e) => `removing the new files failed: ${errorMessage(e)}`,
    );
  }
  await d.updateRecord({ state: 'rolled_back', previous: [] });
  return d.fail(step, {
    ...detail,
    firstInstall: true,
    filesRemoved: !reloaded && !removeError,
    ...(removeError ? { removeError } : {}),
  });
}
