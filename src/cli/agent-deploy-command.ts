import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import type { DeployOutcome, DeployRequest } from '../deploy/deploy-contract.ts';
import { CertfleetError } from '../core/errors.ts';
import { globalFlags } from './context.ts';
import { EXIT, exitWith } from './exit.ts';
import { printJson } from './output.ts';

interface DeployFlags {
  dryRun?: boolean;
  stateDir: string;
  fromState?: boolean;
  subscription?: string;
  cert?: string;
  key?: string;
  chain?: string;
  spec?: string;
  name?: string;
  san?: string[];
  keep?: boolean;
}

/**
 * `certfleet agent deploy --dry-run`: what a deploy would do, without touching live files or reloading.
 * Sources: the agent's local state (`--from-state`: the desired versions and bundles it last received), or
 * files (`--cert/--key/--chain` + `--spec subscription.json`, the subscription's deployment spec as JSON).
 * The config test runs with CERTFLEET_DRY_RUN=1 and CERTFLEET_OUTPUT_DIR=<temp dir holding the rendered files>.
 */
export function registerAgentDeployCommand(agent: Command, defaultStateDir: string): void {
  agent
    .command('deploy')
    .description('render outputs into a temp dir and run the config test there (only --dry-run for now)')
    .option('--dry-run', 'touch no live file, never reload (required)')
    .option('--state-dir <dir>', 'agent state directory (env CERTFLEET_AGENT_STATE_DIR)', defaultStateDir)
    .option('--from-state', "use the desired versions and bundles in the agent's local state")
    .option('--subscription <id>', 'with --from-state: only this subscription')
    .option('--cert <file>', 'leaf certificate PEM (a fullchain file works: the rest becomes the chain)')
    .option('--key <file>', 'private key PEM')
    .option('--chain <file>', 'intermediate certificates PEM')
    .option(
      '--spec <file>',
      'subscription JSON: {"outputs": [...], "configTest", "reload", "window", "verify"}',
    )
    .option('--name <name>', 'certificate name for the hook variables', 'dry-run')
    .option('--san <name...>', 'names the certificate must cover (default: the certificate SANs)')
    .option('--keep', 'keep the rendered temp dir (holds the private key, mode 0700) for inspection')
    .action(async (flags: DeployFlags, cmd: Command) => {
      if (!flags.dryRun) {
        throw new CertfleetError(
          'BAD_REQUEST',
          'agent deploy only supports --dry-run',
          '`certfleet agent run` deploys for real; add --dry-run to preview',
        );
      }
      const requests = flags.fromState ? await fromState(flags) : [await fromFiles(flags)];
      const { planDeploy } = await import('../agent/dry-run-target.ts');
      const results: Array<{ subscriptionId: string; versionId: string; outcome: DeployOutcome }> = [];
      for (const req of requests) {
        const outcome = await planDeploy(req, { stateDir: flags.stateDir, keep: flags.keep });
        results.push({ subscriptionId: req.subscription.id, versionId: req.versionId, outcome });
      }
      if (globalFlags(cmd).json) printJson(results);
      else for (const r of results) process.stdout.write(describe(r.subscriptionId, r.outcome, flags.keep));
      exitWith(results.some((r) => r.outcome.state === 'failed') ? EXIT.failure : EXIT.ok);
    });
}

function describe(subscriptionId: string, o: DeployOutcome, kept?: boolean): string {
  const p = o.dryRun!;
  const lines = [`subscription ${subscriptionId}: ${p.ok ? 'would deploy' : 'would FAIL'}`];
  if (p.validation) lines.push(`  bundle refused (${p.validation.check}): ${p.validation.message}`);
  if (p.failure) lines.push(`  ${p.failure.step} would fail: ${p.failure.message}`);
  for (const out of p.outputs) {
    const who = [out.owner, out.group].filter(Boolean).join(':');
    lines.push(
      `  ${out.wouldWrite ? 'write' : 'keep '} ${out.path} (${out.format}, ${out.mode}${who ? `, ${who}` : ''}, ${out.bytes} bytes)`,
    );
  }
  if (p.configTest) {
    lines.push(
      `  config test ${p.configTest.ok ? 'passed' : `FAILED (exit ${p.configTest.exitCode}${p.configTest.timedOut ? ', timed out' : ''})`}: ${p.configTest.command}`,
    );
    if (!p.configTest.ok && p.configTest.stderrTail.trim())
      lines.push(
        ...p.configTest.stderrTail
          .trim()
          .split('\n')
          .slice(-10)
          .map((l) => `    ${l}`),
      );
  }
  if (p.reload)
    lines.push(
      `  reload ${p.reload.at === 'now' ? 'now' : `at ${p.reload.at} (change window)`}: ${p.reload.command}`,
    );
  if (p.verify)
    lines.push(`  verify ${p.verify.host}:${p.verify.port}${p.verify.sni ? ` (SNI ${p.verify.sni})` : ''}`);
  if (kept && p.outputDir) lines.push(`  rendered files kept in ${p.outputDir}`);
  return `${lines.join('\n')}\n`;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new CertfleetError(
      'BAD_REQUEST',
      `cannot read ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
      'check the path',
    );
  }
}

async function fromFiles(flags: DeployFlags): Promise<DeployRequest> {
  const { splitPemCertificates, inspectCertificate } = await import('../pki/inspect.ts');
  if (!flags.cert || !flags.key || !flags.spec) {
    throw new CertfleetError(
      'BAD_REQUEST',
      'a dry run from files needs --cert, --key and --spec',
      'or use --from-state to preview what the agent last received',
    );
  }
  const certs = splitPemCertificates(await readText(flags.cert, 'certificate'));
  if (certs.length === 0)
    throw new CertfleetError('BAD_REQUEST', `${flags.cert} holds no PEM certificate`, 'pass a PEM file');
  const chainPems = [
    ...certs.slice(1),
    ...(flags.chain ? splitPemCertificates(await readText(flags.chain, 'chain')) : []),
  ];
  let spec: DeployRequest['subscription'];
  try {
    spec = JSON.parse(await readText(flags.spec, 'subscription spec'));
  } catch (e) {
    if (e instanceof CertfleetError) throw e;
    throw new CertfleetError(
      'BAD_REQUEST',
      `${flags.spec} is not valid JSON`,
      'write the subscription spec as JSON',
    );
  }
  if (!Array.isArray(spec?.outputs)) {
    throw new CertfleetError(
      'BAD_REQUEST',
      `${flags.spec} has no "outputs" list`,
      'add "outputs": [{"path", "format"}]',
    );
  }
  const info = inspectCertificate(certs[0]);
  return {
    certificateName: flags.name ?? 'dry-run',
    sans: flags.san ?? info.sans,
    versionId: 'dry-run',
    fingerprint: info.fingerprint,
    bundle: { certPem: certs[0], chainPems, keyPem: await readText(flags.key, 'private key') },
    subscription: { ...spec, id: spec.id ?? 'dry-run' },
  };
}

/** The versions the agent was last told to serve, with their bundles opened by the agent's own key. */
async function fromState(flags: DeployFlags): Promise<DeployRequest[]> {
  const [{ AgentStateStore }, { loadIdentity }, { openSealedKey }] = await Promise.all([
    import('../agent/state-store.ts'),
    import('../agent/agent-identity.ts'),
    import('../protocol/sealed-key.ts'),
  ]);
  const store = new AgentStateStore(flags.stateDir);
  const local = await store.load();
  if (!local.desired) {
    throw new CertfleetError(
      'NOT_FOUND',
      `no desired state in ${flags.stateDir}`,
      'run `certfleet agent run` once so the agent receives its subscriptions, or pass --cert/--key/--spec',
    );
  }
  const identity = await loadIdentity(flags.stateDir);
  const subs = local.desired.subscriptions.filter(
    (s) => s.version && (!flags.subscription || s.subscriptionId === flags.subscription),
  );
  if (subs.length === 0) {
    throw new CertfleetError(
      'NOT_FOUND',
      flags.subscription
        ? `subscription ${flags.subscription} has no version here`
        : 'no subscription has a version yet',
      'check `certfleet status` on the hub',
    );
  }
  const out: DeployRequest[] = [];
  for (const s of subs) {
    const v = s.version!;
    const bundle = await store.loadBundle(v.id);
    if (!bundle) {
      throw new CertfleetError(
        'NOT_FOUND',
        `the bundle of version ${v.id} (${s.certificateName}) is not in ${flags.stateDir}`,
        'let `certfleet agent run` fetch it first',
      );
    }
    const keyPem = openSealedKey(bundle.sealedKey, identity.keys.sealing, local.desired.endpointId, v.id);
    out.push({
      certificateName: s.certificateName,
      sans: s.sans,
      versionId: v.id,
      fingerprint: v.fingerprint,
      bundle: { certPem: bundle.certPem, chainPems: bundle.chainPems, keyPem },
      subscription: { id: s.subscriptionId, ...s.spec },
    });
  }
  return out;
}
