import type { FleetRow, ProbeResultRecord } from '../store/store.ts';
import type { Diagnosis } from './diagnosis.ts';

/**
 * Deployments of a certificate's current version, one diagnosis per endpoint: failed, rolled_back and diverged are
 * failures (the version is not served there), waiting_window a warning (it will be, when the window opens), the
 * rest fine. Each says the step, the command's exit code and stderr tail, what the probes last saw served, and the
 * fix. Pure: the rows come from the fleet read model.
 */
export function checkDeployments(rows: FleetRow[]): Diagnosis[] {
  return rows.filter((r) => r.current).map(diagnoseDeployment);
}

/** How many stderr lines a diagnosis shows: the end is where commands say what went wrong. */
const STDERR_LINES = 10;

interface StepDetail {
  step?: string;
  exitCode?: number | null;
  stderrTail?: string;
  message?: string;
  timedOut?: boolean;
  rollbackError?: string;
  firstInstall?: boolean;
  filesRemoved?: boolean;
  code?: string;
  hint?: string;
  check?: string;
  nextWindowAt?: string;
  served?: string;
  expected?: string;
  target?: string;
}

/** The step a failure happened in, in words; the reason a failed/rolled_back report carries is the step name. */
const STEP_WORDS: Record<string, string> = {
  validation: 'validating the bundle',
  render: 'rendering the output files',
  write: 'writing the output files',
  config: 'reading the subscription (change window)',
  config_test: 'the config test',
  reload: 'the reload',
  verify: 'verifying what is served after the reload',
  rollback_failed: 'the rollback',
};

function fixFor(step: string, r: FleetRow, d: StepDetail): string {
  const redeploy = `\`certfleet deploy ${r.certificate.name} --endpoint ${r.endpoint.name}\``;
  const sub = r.subscription;
  switch (step) {
    case 'config_test':
      return (
        `the service refused the new files: run \`${sub.configTest ?? 'the config test'}\` on ${r.endpoint.name}, ` +
        `fix what it reports (the output paths the config names, their owner and mode), then ${redeploy}`
      );
    case 'reload':
      return (
        `run \`${sub.reload ?? 'the reload command'}\` on ${r.endpoint.name} and fix what it reports` +
        `${d.timedOut ? ' (it did not finish in time)' : ''}, then ${redeploy}`
      );
    case 'verify':
      return (
        `${sub.verify ? `${sub.verify.host}:${sub.verify.port}` : 'the verify target'} did not serve the new ` +
        `certificate: check that the server config names the output files and that the reload reaches the ` +
        `process serving that address, then ${redeploy}`
      );
    case 'validation':
      return `the bundle was refused on the endpoint (${d.check ?? 'see message'}): renew with \`certfleet cert renew ${r.certificate.name}\`, then ${redeploy}`;
    case 'render':
      return `fix the output spec (format, passwordRef) with \`certfleet subscribe ${r.endpoint.name} ${r.certificate.name} ...\`${d.hint ? ` (${d.hint})` : ''}`;
    case 'write':
      return `${d.hint || 'check the output paths, their directories and owners on the endpoint'}, then ${redeploy}`;
    case 'config':
      return `fix the change window with \`certfleet subscribe ${r.endpoint.name} ${r.certificate.name} --window ...\``;
    case 'rollback_failed':
      return `the endpoint may be left with files it cannot serve: check ${r.endpoint.name} now (${d.rollbackError ?? 'see detail'}), fix it, then ${redeploy}`;
    default:
      return `see \`certfleet events --subject certificate:${r.certificate.name}\`, then ${redeploy}`;
  }
}

const short = (fp: string | undefined) => (fp ? fp.slice(0, 16) : '-');

/** `127.0.0.1:443/web.test from hub: 3f2a… (current) at T`, or the probe error, per target and source. */
function servedLines(probes: ProbeResultRecord[], expected: string): string[] {
  return probes.map((p) => {
    const what = p.fingerprint
      ? `${short(p.fingerprint)} (${p.fingerprint === expected ? 'current version' : 'NOT the current version'})`
      : `no certificate (${p.errorKind ?? 'error'}${p.errorMessage ? `: ${p.errorMessage}` : ''})`;
    return `${p.targetKey} from ${p.source}: ${what} at ${p.at}`;
  });
}

function tail(text: string | undefined): string | undefined {
  const lines = (text ?? '').trimEnd().split('\n');
  const kept = lines.slice(-STDERR_LINES).join('\n');
  return kept ? kept : undefined;
}

export function diagnoseDeployment(r: FleetRow): Diagnosis {
  const version = r.current!;
  const check = `deployment to ${r.endpoint.name}`;
  const d = r.deployment;
  const detail = (d?.detail ?? {}) as StepDetail;
  const evidence: Record<string, unknown> = {
    version: `${short(version.fingerprint)} #${version.serial.slice(0, 16)}`,
    ...(d ? { state: d.state, since: d.updatedAt } : {}),
  };
  const served = servedLines(r.probes, version.fingerprint);
  if (served.length) evidence.served = served.join('\n');

  if (!d || d.state === 'pending' || d.state === 'delivered') {
    const agentSilent = r.endpoint.kind === 'agent' && !r.lastSeenAt;
    return {
      check,
      status: agentSilent ? 'warn' : 'ok',
      message: agentSilent
        ? `version ${version.serial.slice(0, 16)} waits for ${r.endpoint.name}, whose agent has never contacted the hub`
        : `version ${version.serial.slice(0, 16)} is on its way to ${r.endpoint.name} (${d?.state ?? 'pending'})`,
      fix: agentSilent
        ? `enroll and start the agent on ${r.endpoint.name}: \`certfleet endpoint enroll-token ${r.endpoint.name}\``
        : '',
      evidence,
    };
  }
  if (d.state === 'waiting_window') {
    const next = detail.nextWindowAt;
    return {
      check,
      status: 'warn',
      message: `installed on ${r.endpoint.name}; the reload waits for the change window${next ? ` (opens ${next})` : ''}`,
      fix: `nothing to do: it reloads in the window; to reload now run \`certfleet deploy ${r.certificate.name} --endpoint ${r.endpoint.name} --now\``,
      evidence: { ...evidence, ...(next ? { nextWindowAt: next } : {}) },
    };
  }
  if (d.state === 'diverged') {
    return {
      check,
      status: 'fail',
      message: d.reason ?? `${r.endpoint.name} serves another certificate than the current version`,
      fix:
        `the files are installed but not what is served: check that the server config on ${r.endpoint.name} ` +
        `names the output files (${r.subscription.outputs.map((o) => o.path).join(', ') || 'none'}) and that ` +
        `the reload reaches the serving process, then \`certfleet deploy ${r.certificate.name} --endpoint ${r.endpoint.name}\``,
      evidence: {
        ...evidence,
        ...(detail.target ? { target: detail.target } : {}),
        ...(detail.served ? { servedFingerprint: detail.served } : {}),
      },
    };
  }
  if (d.state === 'failed' || d.state === 'rolled_back') {
    const step = detail.step ?? d.reason ?? 'unknown';
    const what = STEP_WORDS[step] ?? step;
    const outcome =
      d.state === 'rolled_back'
        ? 'was rolled back: the previous files are back in place'
        : detail.firstInstall
          ? `failed on its first install (${detail.filesRemoved ? 'the new files were removed again' : 'the new files were kept: a reload had used them'})`
          : 'failed';
    const stderr = tail(detail.stderrTail);
    return {
      check,
      status: 'fail',
      message: `version ${version.serial.slice(0, 16)} on ${r.endpoint.name} ${outcome}, at ${what}${detail.message ? `: ${detail.message}` : ''}`,
      fix: fixFor(step, r, detail),
      evidence: {
        ...evidence,
        step,
        ...(detail.exitCode !== undefined ? { exitCode: detail.exitCode } : {}),
        ...(stderr ? { stderr } : {}),
        ...(detail.rollbackError ? { rollbackError: detail.rollbackError } : {}),
      },
    };
  }
  return {
    check,
    status: 'ok',
    message: `version ${version.serial.slice(0, 16)} is ${d.state} on ${r.endpoint.name}`,
    fix: '',
  };
}
