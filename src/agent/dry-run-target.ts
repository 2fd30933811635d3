import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { Clock } from '../core/clock.ts';
import type { ProbeTarget } from '../core/types.ts';
import type { DeployOutcome, DeployReport, DeployRequest, DryRunPlan } from '../deploy/deploy-contract.ts';
import { stagedInPlace, type DeployRecord } from '../deploy/deploy-record.ts';
import type { CommandOptions, CommandResult, DeployTarget, PreviousFile } from '../deploy/deploy-target.ts';
import { runPipeline } from '../deploy/pipeline.ts';
import type { RenderedOutput } from '../deploy/render-outputs.ts';
import type { VerifyResult } from '../deploy/verify-served.ts';
import { LocalTarget } from './local-target.ts';

/**
 * The dry run as a target mode: the real pipeline runs against a target that reads from the live one (current
 * files, the deploy record, directory checks) but writes the outputs into a fresh 0700 temp dir under their live
 * file names, runs the config test there (with CERTFLEET_DRY_RUN=1 and CERTFLEET_OUTPUT_DIR=<temp dir>, the
 * hook paths pointing at the staged files), and only notes the reload and verify it would run. Nothing live is
 * written, no record is saved, nothing reloads. `plan` collects what a real deploy would do.
 *
 * The live record is not shown to the pipeline, so every step runs as for a version not yet staged; the plan
 * still says which files a real deploy would leave alone (`wouldWrite: false`).
 */
export class DryRunTarget implements DeployTarget {
  readonly key = `dry-run:${randomUUID()}`;
  readonly plan: DryRunPlan = { ok: false, outputs: [] };
  private dir?: string;
  private readonly staged = new Map<string, string>();

  constructor(
    private readonly live: DeployTarget,
    private readonly req: DeployRequest,
  ) {}

  readCurrent(paths: string[], signal?: AbortSignal): Promise<PreviousFile[]> {
    return this.live.readCurrent(paths, signal);
  }

  async writeFilesAtomic(files: RenderedOutput[]): Promise<void> {
    const paths = files.map((f) => resolve(f.path));
    const record = await this.live.loadRecord(this.req.subscription.id);
    const inPlace = await stagedInPlace(this.live, record, this.req, paths);
    const dir = (this.dir ??= await mkdtemp(join(tmpdir(), 'certfleet-dry-run-')));
    this.plan.outputDir = dir;
    const used = new Set<string>();
    for (const [i, f] of files.entries()) {
      // Live file names, so a config test can say $CERTFLEET_OUTPUT_DIR/fullchain.pem.
      let name = basename(f.path);
      if (used.has(name)) name = `${i}-${name}`;
      used.add(name);
      const stagedPath = join(dir, name);
      await writeFile(stagedPath, f.data, { mode: f.mode });
      await chmod(stagedPath, f.mode);
      this.staged.set(paths[i], stagedPath);
      this.plan.outputs.push({
        path: paths[i],
        stagedPath,
        format: f.format,
        mode: `0${f.mode.toString(8)}`,
        ...(f.owner !== undefined ? { owner: String(f.owner) } : {}),
        ...(f.group !== undefined ? { group: String(f.group) } : {}),
        bytes: f.data.length,
        wouldWrite: !inPlace,
      });
    }
  }

  /** Nothing live was written, so nothing is put back. */
  async restore(): Promise<void> {}

  async runCommand(command: string, opts: CommandOptions): Promise<CommandResult> {
    if (opts.step === 'reload') {
      this.plan.reload = { command, at: 'now' };
      return {
        command,
        exitCode: 0,
        signal: null,
        timedOut: false,
        aborted: false,
        ok: true,
        stdoutTail: '',
        stderrTail: '',
        durationMs: 0,
      };
    }
    const r = await this.live.runCommand(command, {
      ...opts,
      hook: {
        ...opts.hook,
        outputPaths: opts.hook.outputPaths.map((p) => this.staged.get(p) ?? p),
        // The lineage's files are staged under their live names, so the staged dir is the lineage to test.
        ...(opts.hook.lineage && this.dir ? { lineage: this.dir } : {}),
      },
      extraEnv: { ...opts.extraEnv, CERTFLEET_DRY_RUN: '1', CERTFLEET_OUTPUT_DIR: this.dir ?? '' },
    });
    this.plan.configTest = {
      command,
      ok: r.ok,
      exitCode: r.exitCode,
      stderrTail: r.stderrTail,
      timedOut: r.timedOut,
    };
    return r;
  }

  async verify(target: ProbeTarget): Promise<VerifyResult> {
    this.plan.verify = { host: target.host, port: target.port, sni: target.sni };
    return { ok: true, attempts: 0, message: 'dry run: not verified' };
  }

  async loadRecord(): Promise<DeployRecord | undefined> {
    return undefined;
  }

  async saveRecord(): Promise<void> {}

  /** The plan for the pipeline's `outcome`; `reports` are the transitions it would have reported. */
  finish(outcome: DeployOutcome, reports: DeployReport[]): DeployOutcome {
    const plan = this.plan;
    plan.ok = outcome.state !== 'failed' && outcome.state !== 'rolled_back';
    const message = String(outcome.detail?.message ?? '');
    if (outcome.reason === 'validation') {
      plan.validation = { check: String(outcome.detail?.check), message };
    } else if (!plan.ok && outcome.reason !== 'config_test') {
      plan.failure = { step: outcome.reason ?? 'unknown', message };
    }
    const reload = this.req.subscription.reload;
    if (outcome.state === 'waiting_window' && reload) {
      plan.reload = { command: reload, at: outcome.nextWindowAt ?? 'never' };
    }
    if (plan.reload && reports.some((r) => r.state === 'reloaded' && r.detail?.window_overridden)) {
      plan.reload.windowOverridden = true;
    }
    return { state: plan.ok ? 'pending' : 'failed', dryRun: plan };
  }

  /** Removes the temp dir (it holds the private key) unless it is to be kept for inspection. */
  async close(keep = false): Promise<void> {
    if (this.dir && !keep) await rm(this.dir, { recursive: true, force: true });
  }
}

export interface DryRunOptions {
  /** The agent's state directory: its deploy records say which files are already in place. */
  stateDir: string;
  /** Base environment for the config test and password references (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Keep the temp dir (0700; it holds the private key) instead of removing it. */
  keep?: boolean;
  clock?: Clock;
  signal?: AbortSignal;
  commandTimeoutMs?: number;
  trustedRootPems?: string[];
}

/** What deploying `req` on this machine would do: the pipeline against a DryRunTarget; reports nothing. */
export async function planDeploy(req: DeployRequest, opts: DryRunOptions): Promise<DeployOutcome> {
  const target = new DryRunTarget(new LocalTarget({ stateDir: opts.stateDir, env: opts.env }), req);
  const reports: DeployReport[] = [];
  try {
    const outcome = await runPipeline(req, target, async (r) => void reports.push(r), {
      clock: opts.clock,
      signal: opts.signal,
      env: opts.env,
      commandTimeoutMs: opts.commandTimeoutMs,
      trustedRootPems: opts.trustedRootPems,
    });
    return target.finish(outcome, reports);
  } finally {
    await target.close(opts.keep);
  }
}
