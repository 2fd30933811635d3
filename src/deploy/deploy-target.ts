import type { ProbeTarget } from '../core/types.ts';
import type { DeployRecord } from './deploy-record.ts';
import type { HookContext } from './hook-env.ts';
import type { RenderedOutput } from './render-outputs.ts';
import type { ServedExpectation } from './served-chain.ts';
import type { VerifyResult } from './verify-served.ts';

/**
 * Where the deploy pipeline (pipeline.ts) puts a version: the agent's own machine (src/agent/local-target.ts), a
 * dry run's temp dir (src/agent/dry-run-target.ts), later a host the hub pushes to (connectors/). The pipeline
 * decides *what* happens (validate, render, write, config test, window, reload, verify, rollback); a target only
 * knows *how* to do each thing on its endpoint.
 *
 * Contract:
 * - Concurrency: the pipeline serialises calls per `key` and subscription, so a target never sees two deploys of
 *   one subscription at once; calls for different subscriptions may overlap and must not share mutable state
 *   beyond what the endpoint itself shares (its file system, its server).
 * - Cancellation: every method that takes a signal stops early when it fires and rejects with its reason, leaving
 *   the endpoint as `writeFilesAtomic` describes. `restore` takes none: a rollback runs to the end.
 * - Not found: `readCurrent` reports a missing file as `previous: 'absent'`; `loadRecord` resolves `undefined`
 *   when nothing was recorded (or the record is unreadable: the pipeline then rewrites, which is always safe).
 * - Errors: methods that touch files reject with a CertfleetError naming the path and the fix (a directory
 *   another user could steer is refused, not followed). `runCommand` and `verify` never reject for a failing
 *   command or server: their result says what happened.
 */
export interface DeployTarget {
  /** Identifies the endpoint: deploys with the same key and subscription run one after another. */
  readonly key: string;

  /** What each path holds now (content, mode, owner), through the same checks a write would make. */
  readCurrent(paths: string[], signal?: AbortSignal): Promise<PreviousFile[]>;

  /**
   * Replaces every file so that readers (and a crash) see the whole old set or the whole new set, each file with
   * exactly the mode and owner asked for (never inherited from what was there). On failure before its commit
   * point nothing changed; after it, the pipeline restores the previous set. `hook`: what is being deployed.
   */
  writeFilesAtomic(
    files: RenderedOutput[],
    opts: { signal?: AbortSignal; hook?: HookContext },
  ): Promise<void>;

  /**
   * Puts back what `readCurrent` returned: contents with their mode and owner; removes files that were absent.
   * `hook` says which certificate the files belong to (a target that names objects after it needs that).
   */
  restore(previous: PreviousFile[], opts?: { hook?: HookContext }): Promise<void>;

  /**
   * Runs a config test or reload command with the hook variables of `hook` (hook-env.ts). Never rejects for a
   * failing command; a timeout or abort ends the command and everything it started.
   */
  runCommand(command: string, opts: CommandOptions): Promise<CommandResult>;

  /** Proves the endpoint serves the expected leaf with a chain clients accept (verify-served.ts). */
  verify(target: ProbeTarget, expected: ServedExpectation, opts: VerifyOptions): Promise<VerifyResult>;

  /** The last record the pipeline saved for this subscription on this target (deploy-record.ts). */
  loadRecord(subscriptionId: string): Promise<DeployRecord | undefined>;
  /** Durably replaces the subscription's record; it holds the previous files (old private key included). */
  saveRecord(record: DeployRecord, signal?: AbortSignal): Promise<void>;
}

/** What a target held before a write, enough for `restore` to put it back (content, mode, owner). */
export interface PreviousFile {
  path: string;
  previous: Buffer | 'absent';
  mode?: number;
  uid?: number;
  gid?: number;
}

export type CommandStep = 'config_test' | 'reload';

export interface CommandOptions {
  step: CommandStep;
  hook: HookContext;
  /** Variables set over the hook variables (a dry run adds CERTFLEET_DRY_RUN and CERTFLEET_OUTPUT_DIR). */
  extraEnv?: Record<string, string>;
  /** Default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface CommandResult {
  command: string;
  /** Exit code, or null when ended by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  ok: boolean;
  /** Last ~2 KB of each stream. */
  stdoutTail: string;
  stderrTail: string;
  durationMs: number;
}

export interface VerifyOptions {
  /** Keep trying for this long (default 5000 ms). */
  totalMs?: number;
  /** Dates in the served chain are judged against this (the pipeline's clock). */
  now?: Date;
  signal?: AbortSignal;
}
