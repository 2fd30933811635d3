import { resolve } from 'node:path';
import type { ProbeTarget } from '../core/types.ts';
import type { DeployOutcome, DeployReporter, DeployRequest } from '../deploy/deploy-contract.ts';
import type {
  CommandOptions,
  CommandResult,
  DeployTarget,
  PreviousFile,
  VerifyOptions,
} from '../deploy/deploy-target.ts';
import type { DeployRecord } from '../deploy/deploy-record.ts';
import { hookEnv } from '../deploy/hook-env.ts';
import { runPipeline, type PipelineOptions } from '../deploy/pipeline.ts';
import type { RenderedOutput } from '../deploy/render-outputs.ts';
import { verifyServed, type ServedExpectation, type VerifyResult } from '../deploy/verify-served.ts';
import { restoreFiles, writeFilesAtomic } from './atomic-write.ts';
import { runCommand } from '../deploy/run-command.ts';
import { loadRecord, saveRecord } from './local-records.ts';
import { readCurrentFiles } from './read-current.ts';

export interface LocalTargetOptions {
  /** The agent's state directory; deploy records go to `<stateDir>/deploys/` (local-records.ts). */
  stateDir: string;
  /** Base environment for commands (default process.env); the hook variables are layered over it. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The agent's own machine as a DeployTarget (src/deploy/deploy-target.ts): journaled atomic writes through
 * checked directories (atomic-write.ts, trusted-dir.ts), commands through `/bin/sh` in their own process group
 * (src/deploy/run-command.ts), verify by TLS handshakes from here (src/deploy/verify-served.ts), records in the
 * state directory.
 * Before the first deploy after a start the agent must run `recoverPendingWrites(outputDirs(subscription))`
 * (output-dirs.ts); run-agent.ts does.
 */
export class LocalTarget implements DeployTarget {
  readonly key: string;

  constructor(private readonly opts: LocalTargetOptions) {
    this.key = `local:${resolve(opts.stateDir)}`;
  }

  readCurrent(paths: string[], signal?: AbortSignal): Promise<PreviousFile[]> {
    return readCurrentFiles(paths, signal);
  }

  async writeFilesAtomic(files: RenderedOutput[], opts: { signal?: AbortSignal }): Promise<void> {
    await writeFilesAtomic(files, { signal: opts.signal });
  }

  restore(previous: PreviousFile[]): Promise<void> {
    return restoreFiles(previous);
  }

  runCommand(command: string, opts: CommandOptions): Promise<CommandResult> {
    return runCommand(command, {
      env: { ...hookEnv(opts.hook, this.opts.env ?? process.env), ...opts.extraEnv },
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
    });
  }

  verify(target: ProbeTarget, expected: ServedExpectation, opts: VerifyOptions): Promise<VerifyResult> {
    return verifyServed(target, expected, opts);
  }

  loadRecord(subscriptionId: string): Promise<DeployRecord | undefined> {
    return loadRecord(this.opts.stateDir, subscriptionId);
  }

  saveRecord(record: DeployRecord, signal?: AbortSignal): Promise<void> {
    return saveRecord(this.opts.stateDir, record, signal);
  }
}

export interface LocalDeployOptions extends PipelineOptions {
  /** The agent's state directory (deploy records). */
  stateDir: string;
}

/**
 * Deploys on this machine: the pipeline against a LocalTarget. `env` is the base environment for both the
 * commands and password references.
 */
export function deployLocally(
  req: DeployRequest,
  report: DeployReporter,
  opts: LocalDeployOptions,
): Promise<DeployOutcome> {
  return runPipeline(req, new LocalTarget({ stateDir: opts.stateDir, env: opts.env }), report, opts);
}
