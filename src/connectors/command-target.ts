import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { ProbeTarget } from '../core/types.ts';
import type { DeployRecord } from '../deploy/deploy-record.ts';
import type { CommandOptions, CommandResult, PreviousFile, VerifyOptions } from '../deploy/deploy-target.ts';
import { hookEnv } from '../deploy/hook-env.ts';
import type { RenderedOutput } from '../deploy/render-outputs.ts';
import { runCommand } from '../deploy/run-command.ts';
import { verifyServed, type ServedExpectation, type VerifyResult } from '../deploy/verify-served.ts';
import type { ConnectorTarget } from './connector-target.ts';

/**
 * The local command connector: for targets best reached by an existing script (an appliance's CLI, a vendor
 * tool). Each deploy run renders the outputs into a fresh private temp dir on the hub (0700, files under their
 * output file names) and runs the subscription's config test and reload there as commands on the hub, with
 * certbot's deploy-hook variables (RENEWED_LINEAGE = the temp dir, RENEWED_DOMAINS) and CERTFLEET_OUTPUTS naming
 * the staged files. The temp dir (it holds the private key) is removed when the run ends.
 *
 * Nothing persists between runs, so there is nothing to roll back to: every deploy is a first install to the
 * pipeline (a failed config test or reload ends `failed`; the script itself must leave the target as it was).
 */
export class CommandTarget implements ConnectorTarget {
  private dir?: string;
  private readonly staged = new Map<string, string>();

  constructor(
    readonly key: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  async readCurrent(paths: string[]): Promise<PreviousFile[]> {
    return paths.map((path) => ({ path, previous: 'absent' as const }));
  }

  async writeFilesAtomic(files: RenderedOutput[]): Promise<void> {
    const dir = (this.dir ??= await mkdtemp(join(tmpdir(), 'certfleet-connector-')));
    await chmod(dir, 0o700);
    const used = new Set<string>();
    for (const [i, f] of files.entries()) {
      let name = basename(f.path);
      if (used.has(name)) name = `${i}-${name}`;
      used.add(name);
      const staged = join(dir, name);
      await writeFile(staged, f.data, { mode: f.mode & 0o700 });
      this.staged.set(resolve(f.path), staged);
    }
  }

  /** Removes what this run staged; there is never an older set here. */
  async restore(): Promise<void> {
    await this.close();
  }

  runCommand(command: string, opts: CommandOptions): Promise<CommandResult> {
    const outputPaths = opts.hook.outputPaths.map((p) => this.staged.get(p) ?? p);
    return runCommand(command, {
      env: {
        ...hookEnv({ ...opts.hook, outputPaths }, this.env),
        ...(this.dir ? { RENEWED_LINEAGE: this.dir, CERTFLEET_OUTPUT_DIR: this.dir } : {}),
        ...opts.extraEnv,
      },
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
      ...(this.dir ? { cwd: this.dir } : {}),
    });
  }

  verify(target: ProbeTarget, expected: ServedExpectation, opts: VerifyOptions): Promise<VerifyResult> {
    return verifyServed(target, expected, opts);
  }

  async loadRecord(): Promise<DeployRecord | undefined> {
    return undefined;
  }

  async saveRecord(): Promise<void> {}

  async close(): Promise<void> {
    const dir = this.dir;
    this.dir = undefined;
    this.staged.clear();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}
