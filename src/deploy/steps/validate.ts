import { checkWindow } from '../change-window.ts';
import { errorDetail, type DeployRun } from '../deploy-run.ts';
import type { DeployOutcome } from '../deploy-contract.ts';
import { validateBundle } from '../validate-bundle.ts';

/** validate: nothing on the target changes for a bad bundle or a change window that cannot be evaluated. */
export async function validate(d: DeployRun): Promise<DeployOutcome | undefined> {
  const problem = validateBundle(d.req.bundle, {
    now: d.clock.now(),
    sans: d.req.sans,
    fingerprint: d.req.fingerprint,
    trustedRootPems: d.opts.trustedRootPems,
  });
  if (problem) return d.fail('validation', { check: problem.check, message: problem.message });
  if (d.sub.reload && d.sub.window) {
    try {
      checkWindow(d.sub.window);
    } catch (e) {
      return d.fail('config', errorDetail(e));
    }
  }
  return undefined;
}
