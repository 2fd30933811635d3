/**
 * The deploy pipeline, one version for one subscription on one DeployTarget:
 *
 *   validate → render (in memory) → write atomically (keeping the previous set) → `installed`
 *   → config test → window? (`waiting_window`, return) → reload → `reloaded` → verify → `verified`
 *
 * and rollback when the config test, reload or verify fails (steps/rollback.ts). Each step is one file in
 * steps/; a step either ends the deploy with an outcome or lets the next one run. The same pipeline serves every
 * target: the agent's machine, a dry run (which stages into a temp dir and reloads nothing), and hub connectors.
 *
 * Re-invocation: for `waiting_window` the caller calls `runPipeline` again with the same request at
 * `nextWindowAt`; the files are not rewritten when the target's record shows they are still in place (compared by
 * SHA-256), the config test runs again (the server config may have changed meanwhile), then the reload.
 *
 * Calls for the same target key and subscription are serialised in-process.
 */
import type { DeployOutcome, DeployReporter, DeployRequest } from './deploy-contract.ts';
import { DeployRun, type PipelineOptions } from './deploy-run.ts';
import type { DeployTarget } from './deploy-target.ts';
import { configTest } from './steps/config-test.ts';
import { reload } from './steps/reload.ts';
import { render } from './steps/render.ts';
import { validate } from './steps/validate.ts';
import { verify } from './steps/verify.ts';
import { window } from './steps/window.ts';
import { write } from './steps/write.ts';

export type { PipelineOptions };

type Step = (d: DeployRun) => Promise<DeployOutcome | undefined>;

/** In order; rollback is not a step of its own but what config test, reload and verify fall back to. */
export const DEPLOY_STEPS: ReadonlyArray<{ name: string; run: Step }> = [
  { name: 'validate', run: validate },
  { name: 'render', run: render },
  { name: 'write', run: write },
  { name: 'config_test', run: configTest },
  { name: 'window', run: window },
  { name: 'reload', run: reload },
  { name: 'verify', run: verify },
];

const queues = new Map<string, Promise<unknown>>();

export function runPipeline(
  req: DeployRequest,
  target: DeployTarget,
  report: DeployReporter,
  opts: PipelineOptions = {},
): Promise<DeployOutcome> {
  const key = `${target.key}\0${req.subscription.id}`;
  const prev = queues.get(key) ?? Promise.resolve();
  const go = () => runSteps(new DeployRun(req, target, report, opts));
  const run = prev.then(go, go);
  queues.set(key, run);
  run
    .finally(() => {
      if (queues.get(key) === run) queues.delete(key);
    })
    .catch(() => {}); // the caller sees the rejection through `run`

  return run;
}

async function runSteps(d: DeployRun): Promise<DeployOutcome> {
  for (const step of DEPLOY_STEPS) {
    const outcome = await step.run(d);
    if (outcome) return outcome;
  }
  return { state: d.lastState };
}
