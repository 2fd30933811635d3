/**
 * A simulated endpoint as a DeployTarget: files in memory, a "server" that serves whatever the files held at its
 * last good reload, and the reload-fails fault (a reload with new files fails; the reload after the rollback, with
 * the old files back, works, as nginx keeps its old config when a new one is refused). The pipeline itself
 * (src/deploy/pipeline.ts) is the real one.
 */
import type { ProbeTarget } from '../core/types.ts';
import type { DeployRecord } from '../deploy/deploy-record.ts';
import type { CommandOptions, CommandResult, DeployTarget, PreviousFile } from '../deploy/deploy-target.ts';
import type { RenderedOutput } from '../deploy/render-outputs.ts';
import type { VerifyResult } from '../deploy/verify-served.ts';

/** What a server serves: enough to judge it (fingerprint) and to count expired minutes. */
export interface Served {
  fingerprint: string;
  notBefore: number;
  notAfter: number;
}

export interface SimEndpointHooks {
  /** The leaf a certificate file holds (the rehearsal knows every version it issued). */
  lookup(certFileContent: string): Served | undefined;
  /** Whether reloads with new files fail now (the reload-fails fault). */
  reloadFails(): boolean;
  /** The server switches from `before` to `after` (the rehearsal counts expired minutes from it). */
  onServe(before: Served | undefined, after: Served): void;
}

const ok = (command: string, okay: boolean): CommandResult => ({
  command,
  exitCode: okay ? 0 : 1,
  signal: null,
  timedOut: false,
  aborted: false,
  ok: okay,
  stdoutTail: '',
  stderrTail: okay ? '' : 'nginx: [emerg] cannot load certificate (simulated reload failure)',
  durationMs: 0,
});

export class SimEndpoint implements DeployTarget {
  readonly files = new Map<string, Buffer>();
  private readonly records = new Map<string, DeployRecord>();
  served?: Served;

  constructor(
    readonly key: string,
    /** The output that holds the certificate (fullchain): what the server loads. */
    private readonly certPath: string,
    private readonly hooks: SimEndpointHooks,
  ) {}

  async readCurrent(paths: string[]): Promise<PreviousFile[]> {
    return paths.map((path) => {
      const data = this.files.get(path);
      return data ? { path, previous: data, mode: 0o600 } : { path, previous: 'absent' };
    });
  }

  async writeFilesAtomic(files: RenderedOutput[]): Promise<void> {
    for (const f of files) this.files.set(f.path, f.data);
  }

  async restore(previous: PreviousFile[]): Promise<void> {
    for (const p of previous) {
      if (p.previous === 'absent') this.files.delete(p.path);
      else this.files.set(p.path, p.previous);
    }
  }

  async runCommand(command: string, opts: CommandOptions): Promise<CommandResult> {
    if (opts.step === 'config_test') return ok(command, true);
    const loaded = this.hooks.lookup(this.files.get(this.certPath)?.toString() ?? '');
    const changes = loaded?.fingerprint !== this.served?.fingerprint;
    if (!loaded || (changes && this.hooks.reloadFails())) return ok(command, false);
    if (changes) {
      this.hooks.onServe(this.served, loaded);
      this.served = loaded;
    }
    return ok(command, true);
  }

  /** Subscriptions carry no verify target here: the hub's probes confirm what is served (probe judgement). */
  async verify(_target: ProbeTarget): Promise<VerifyResult> {
    return this.served
      ? { ok: true, attempts: 1, servedFingerprint: this.served.fingerprint, message: 'served' }
      : { ok: false, attempts: 1, message: 'nothing served' };
  }

  async loadRecord(subscriptionId: string): Promise<DeployRecord | undefined> {
    return this.records.get(subscriptionId);
  }

  async saveRecord(record: DeployRecord): Promise<void> {
    this.records.set(record.subscriptionId, record);
  }
}
