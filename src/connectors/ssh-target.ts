import { CertfleetError } from '../core/errors.ts';
import type { ProbeTarget } from '../core/types.ts';
import type { DeployRecord } from '../deploy/deploy-record.ts';
import type { CommandOptions, CommandResult, PreviousFile, VerifyOptions } from '../deploy/deploy-target.ts';
import type { RenderedOutput } from '../deploy/render-outputs.ts';
import { verifyServed, type ServedExpectation, type VerifyResult } from '../deploy/verify-served.ts';
import type { ConnectorTarget, RecordStore } from './connector-target.ts';
import { SshSession, type ExecResult, type SshSettings } from './ssh-session.ts';

export interface SshTargetOptions {
  /** Identifies the endpoint for the pipeline's per-subscription serialisation. */
  key: string;
  ssh: SshSettings;
  /** Per file request (read, stage, commit, remove). */
  stepTimeoutMs: number;
  records: RecordStore;
}

/** Seconds the forced command's `timeout` gets on top of the client's own, so the client always gives up first. */
const REMOTE_GRACE_MS = 5000;

/**
 * A host reached over SSH as a DeployTarget, speaking exactly the requests of the forced command
 * (deploy/certfleet-ssh-forced-command.sh): `read`, `stage` (to PATH.certfleet-new, with mode and owner), `commit`
 * (rename into place), `discard`, `remove`, and `run config_test|reload` (only the commands configured on the
 * host). One connection per deploy run, opened on first use; verify runs from the hub (TLS handshakes to the
 * subscription's verify target); records live on the hub, sealed (`records`).
 *
 * Hook variables (CERTFLEET_*, RENEWED_*) are not sent: the forced command runs only its configured command line.
 */
export class SshTarget implements ConnectorTarget {
  readonly key: string;
  private session?: Promise<SshSession>;
  /** Once the host failed to connect or stopped answering, the rest of this run fails at once with that error. */
  private gaveUp?: unknown;

  constructor(private readonly opts: SshTargetOptions) {
    this.key = opts.key;
  }

  private async connected(signal?: AbortSignal): Promise<SshSession> {
    if (this.gaveUp) throw this.gaveUp;
    const current = this.session && (await this.session.catch(() => undefined));
    if (current?.usable) return current;
    const next = SshSession.connect(this.opts.ssh, { signal });
    this.session = next;
    try {
      return await next;
    } catch (e) {
      this.gaveUp = e;
      throw e;
    }
  }

  /** One forced-command request; rejects with the host's own words when it fails. */
  private async request(
    line: string,
    what: string,
    opts: { stdin?: Buffer; signal?: AbortSignal } = {},
  ): Promise<ExecResult> {
    const session = await this.connected(opts.signal);
    const r = await session.exec(line, {
      stdin: opts.stdin,
      timeoutMs: this.opts.stepTimeoutMs,
      signal: opts.signal,
    });
    if (r.exitCode === 0 && !r.timedOut && !r.aborted) return r;
    const { host, port, endpointName } = this.opts.ssh;
    const error = new CertfleetError(
      r.timedOut ? 'UNREACHABLE' : 'OUTPUT_WRITE_FAILED',
      `${what} on ${host}:${port} (endpoint "${endpointName}") failed${r.exitCode !== null ? ` (exit ${r.exitCode})` : ''}: ${r.stderrTail.trim() || 'no message'}`,
      r.exitCode === 64
        ? "the host's forced command refused it: check the `allow` lines of its config (docs/connectors.md)"
        : "check the path, its directory and the deploy user's rights on the host",
    );
    if (r.timedOut) this.gaveUp = error;
    throw error;
  }

  async readCurrent(paths: string[], signal?: AbortSignal): Promise<PreviousFile[]> {
    const out: PreviousFile[] = [];
    for (const path of paths) {
      const r = await this.request(`read ${remotePath(path)}`, `reading ${path}`, { signal });
      out.push(parseRead(path, r.stdout));
    }
    return out;
  }

  async writeFilesAtomic(files: RenderedOutput[], opts: { signal?: AbortSignal }): Promise<void> {
    await this.stageAndCommit(
      files.map((f) => ({ path: f.path, data: f.data, mode: f.mode, owner: f.owner, group: f.group })),
      opts.signal,
    );
  }

  /** Every file to its temp name first; only when all are there, one `commit` renames them into place. */
  private async stageAndCommit(
    files: Array<{
      path: string;
      data: Buffer;
      mode: number;
      owner?: string | number;
      group?: string | number;
    }>,
    signal?: AbortSignal,
  ): Promise<void> {
    if (files.length === 0) return;
    const paths = files.map((f) => remotePath(f.path));
    try {
      for (const [i, f] of files.entries()) {
        const mode = (f.mode & 0o7777).toString(8).padStart(3, '0');
        await this.request(
          `stage ${paths[i]} ${mode} ${ownerWord(f.owner)} ${ownerWord(f.group)}`,
          `uploading ${f.path}`,
          { stdin: f.data, signal },
        );
      }
    } catch (e) {
      // Nothing was renamed yet: take the temp files away again (best effort; the next stage overwrites them).
      await this.request(`discard ${paths.join(' ')}`, 'discarding staged files').catch(() => undefined);
      throw e;
    }
    await this.request(`commit ${paths.join(' ')}`, `renaming ${paths.length} file(s) into place`, {
      signal,
    });
  }

  async restore(previous: PreviousFile[]): Promise<void> {
    const present = previous.filter((p) => p.previous !== 'absent');
    await this.stageAndCommit(
      present.map((p) => ({
        path: p.path,
        data: p.previous as Buffer,
        mode: p.mode ?? 0o600,
        owner: p.uid,
        group: p.gid,
      })),
    );
    const absent = previous.filter((p) => p.previous === 'absent').map((p) => remotePath(p.path));
    if (absent.length) await this.request(`remove ${absent.join(' ')}`, 'removing new files');
  }

  async runCommand(command: string, opts: CommandOptions): Promise<CommandResult> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const base = { command, signal: null, stdoutTail: '' };
    let session: SshSession;
    try {
      session = await this.connected(opts.signal);
    } catch (e) {
      return {
        ...base,
        exitCode: null,
        timedOut: false,
        aborted: !!opts.signal?.aborted,
        ok: false,
        stderrTail: e instanceof Error ? e.message : String(e),
        durationMs: 0,
      };
    }
    const remoteSeconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    const r = await session.exec(`run ${opts.step} ${remoteSeconds}`, {
      stdin: `${command.replace(/\n/g, ' ')}\n`,
      timeoutMs: timeoutMs + REMOTE_GRACE_MS,
      signal: opts.signal,
    });
    if (r.timedOut) {
      this.gaveUp = new CertfleetError(
        'UNREACHABLE',
        `the ssh host ${this.opts.ssh.host}:${this.opts.ssh.port} stopped answering during the ${opts.step}`,
        'check the host; the next deploy connects again',
      );
    }
    // `timeout` exits 124 when it had to end the command.
    const timedOut = r.timedOut || r.exitCode === 124 || r.exitCode === 137;
    return {
      command,
      exitCode: r.exitCode,
      signal: (r.signal as NodeJS.Signals | null) ?? null,
      timedOut,
      aborted: r.aborted,
      ok: r.exitCode === 0 && !timedOut && !r.aborted,
      stdoutTail: r.stdout.subarray(-2048).toString('utf8'),
      stderrTail: r.stderrTail,
      durationMs: r.durationMs,
    };
  }

  verify(target: ProbeTarget, expected: ServedExpectation, opts: VerifyOptions): Promise<VerifyResult> {
    return verifyServed(target, expected, opts);
  }

  loadRecord(subscriptionId: string): Promise<DeployRecord | undefined> {
    return this.opts.records.load(subscriptionId);
  }

  saveRecord(record: DeployRecord): Promise<void> {
    return this.opts.records.save(record);
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    (await s?.catch(() => undefined))?.close();
  }
}

/** The forced command splits its request on spaces: a path must be absolute and hold none. */
function remotePath(path: string): string {
  if (!path.startsWith('/') || /[\s'"\\$`;&|<>*?]/.test(path)) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `output path "${path}" cannot be sent to an ssh connector endpoint`,
      'use absolute paths without spaces, quotes or shell characters for ssh endpoints',
    );
  }
  return path;
}

function ownerWord(v: string | number | undefined): string {
  if (v === undefined || v === '') return '-';
  const s = String(v);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(s)) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `owner or group "${s}" is not a user or group name`,
      'use a plain name or number',
    );
  }
  return s;
}

/** `absent`, or `MODE UID GID\n` and the bytes. */
function parseRead(path: string, out: Buffer): PreviousFile {
  const nl = out.indexOf(0x0a);
  const head = out.subarray(0, nl < 0 ? out.length : nl).toString('latin1');
  if (head === 'absent') return { path, previous: 'absent' };
  const m = /^([0-7]{3,4}) (\d+) (\d+)$/.exec(head);
  if (!m || nl < 0) {
    throw new CertfleetError(
      'OUTPUT_WRITE_FAILED',
      `reading ${path}: the host's answer is not the forced command's (${JSON.stringify(head.slice(0, 60))})`,
      'install deploy/certfleet-ssh-forced-command.sh as the forced command of the deploy key (docs/connectors.md)',
    );
  }
  return {
    path,
    previous: out.subarray(nl + 1),
    mode: parseInt(m[1], 8),
    uid: Number(m[2]),
    gid: Number(m[3]),
  };
}
