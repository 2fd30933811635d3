import { resolve } from 'node:path';
import { errorDetail, type DeployRun } from '../deploy-run.ts';
import type { DeployOutcome } from '../deploy-contract.ts';
import { deployOutputs } from '../certbot-lineage.ts';
import { renderOutputs } from '../render-outputs.ts';

/** render: every output in memory, so a bad format or password reference fails before anything is written. */
export async function render(d: DeployRun): Promise<DeployOutcome | undefined> {
  try {
    d.rendered = await renderOutputs(d.req.bundle, deployOutputs(d.sub), {
      env: d.opts.env,
      signal: d.signal,
    });
  } catch (e) {
    return d.fail('render', errorDetail(e));
  }
  d.paths = d.rendered.map((r) => resolve(r.path));
  d.hook = {
    certificateName: d.req.certificateName,
    sans: d.req.sans,
    fingerprint: d.req.fingerprint,
    versionId: d.req.versionId,
    subscriptionId: d.sub.id,
    outputPaths: d.paths,
    ...(d.sub.certbotLineage ? { lineage: resolve(d.sub.certbotLineage) } : {}),
  };
  return undefined;
}
