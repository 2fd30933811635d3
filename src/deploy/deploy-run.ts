import { systemClock, type Clock } from '../core/clock.ts';
import { errorMessage, isCertfleetError } from '../core/errors.ts';
import type { DeploymentState, ReportedState } from './states.ts';
import { windowState, type WindowState } from './change-window.ts';
import type { DeployOutcome, DeployReporter, DeployRequest } from './deploy-contract.ts';
import type { DeployRecord } from './deploy-record.ts';
import type { CommandResult, CommandStep, DeployTarget, PreviousFile } from './deploy-target.ts';
import type { HookContext } from './hook-env.ts';
import type { RenderedOutput } from './render-outputs.ts';

export interface PipelineOptions {
  clock?: Clock;
  signal?: AbortSignal;
  /** Environment for password references (`env:NAME`); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Per command (config test, reload); default 60 s. */
  commandTimeoutMs?: number;
  /** How long verify keeps retrying after a reload; default 5 s. */
  verifyTimeoutMs?: number;
  /** Extra roots the bundle's chain must end at; default: the chain only has to be internally consistent. */
  trustedRootPems?: string[];
}

/**
 * One deploy in progress: the request, the target, and what the steps (steps/*.ts) learn on the way. Each step
 * reads what earlier steps set and either returns an outcome (the deploy ends there) or lets the next one run.
 */
export class DeployRun {
  readonly clock: Clock;
  readonly signal?: AbortSignal;
  rendered: RenderedOutput[] = [];
  /** Resolved output paths, in output order. */
  paths: string[] = [];
  hook!: HookContext;
  record?: DeployRecord;
  /** What the outputs held before this version: what a rollback puts back. */
  previous: PreviousFile[] = [];
  /** The state a deploy without verify ends in. */
  lastState: DeploymentState = 'installed';
  private window?: WindowState;

  constructor(
    readonly req: DeployRequest,
    readonly target: DeployTarget,
    private readonly report: DeployReporter,
    readonly opts: PipelineOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.signal = opts.signal;
  }

  get sub(): DeployRequest['subscription'] {
    return this.req.subscription;
  }

  async emit(state: ReportedState, reason?: string, detail?: Record<string, unknown>): Promise<void> {
    try {
      await this.report({
        state,
        ...(reason ? { reason } : {}),
        ...(detail ? { detail } : {}),
        at: this.clock.now().toISOString(),
      });
    } catch {
      // The reporter queues for the hub; a failure to report must not stop a rollback half-way.
    }
  }

  async fail(reason: string, detail: Record<string, unknown>): Promise<DeployOutcome> {
    await this.emit('failed', reason, detail);
    return { state: 'failed', reason, detail };
  }

  /** Saves the record with `change`; losing it only costs a rewrite of identical files on the next call. */
  async updateRecord(change: Partial<DeployRecord>): Promise<void> {
    if (!this.record) return;
    this.record = { ...this.record, ...change, updatedAt: this.clock.now().toISOString() };
    await this.target.saveRecord(this.record).catch(() => {});
  }

  /** The change window now; always open when nothing is reloaded or no window is set. */
  windowNow(): WindowState {
    this.window ??=
      this.sub.reload && this.sub.window ? windowState(this.sub.window, this.clock.now()) : { open: true };
    return this.window;
  }

  /** True when the reload has to wait for the window (and no `--now` override asks otherwise). */
  mustWait(): boolean {
    return !this.windowNow().open && !this.req.overrideWindow;
  }

  waiting(): DeployOutcome {
    const nextWindowAt = this.windowNow().opensAt?.toISOString();
    return { state: 'waiting_window', ...(nextWindowAt ? { nextWindowAt } : {}) };
  }

  /** Reported on reload and verify when the reload ran outside its window (`--now`). */
  overrideDetail(): Record<string, unknown> {
    return this.windowNow().open ? {} : { window_overridden: true };
  }

  runCommand(step: CommandStep, command: string, signal = this.signal): Promise<CommandResult> {
    return this.target.runCommand(command, {
      step,
      hook: this.hook,
      timeoutMs: this.opts.commandTimeoutMs,
      signal,
    });
  }
}

export function errorDetail(e: unknown): Record<string, unknown> {
  return isCertfleetError(e)
    ? { code: e.code, message: e.message, hint: e.hint }
    : { message: errorMessage(e) };
}

export function commandDetail(step: CommandStep, r: CommandResult): Record<string, unknown> {
  const how = r.timedOut
    ? `timed out after ${r.durationMs} ms and was killed`
    : r.exitCode === null
      ? `was ended by ${r.signal}`
      : `exited with code ${r.exitCode}`;
  return {
    step,
    exitCode: r.exitCode,
    stderrTail: r.stderrTail,
    message: `${step === 'config_test' ? 'config test' : 'reload'} command ${how}`,
    ...(r.timedOut ? { timedOut: true } : {}),
  };
}
