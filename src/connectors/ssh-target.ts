import { CertfleetError } from '../core/errors.ts';
import type { ProbeTarget } from '../core/types.ts';
import type { DeployRecord } from '../deploy/deploy-record.ts';
import type { CommandOptions, CommandResult, PreviousFile, VerifyOptions } from '../deploy/deploy-target.ts';
import type { RenderedOutput } from '../deploy/render-outputs.ts';
import { verifyServed, type ServedExpectation, type VerifyResult } from '../deploy/verify-served.ts';
import type { ConnectorTarget, RecordStore } from './connector-target.ts';
import { ForcedSession } from './ssh-forced-session.ts';
import { SshSession, type ExecResult, type SshSettings } from './ssh-session.ts';
import { encodePut, parseRead, remotePath, type PutFile } from './ssh-wire.ts';

export interface SshTargetOptions {
  /** Identifies the endpoint for the pipeline's per-subscription serialisation. */
  key: string;
  ssh: SshSettings;
  /** Per file request (read, put, remove). */
  stepTimeoutMs: number;
  records: RecordStore;
}

/** Seconds the forced command's `timeout` gets on top of the client's own, so the client always gives up first. */
const REMOTE_GRACE_MS = 5000;

/**
 * A host reached over SSH as a DeployTarget, speaking exactly the requests of the forced command
 * (deploy/certfleet-ssh-forced-command.sh), batched so a deploy is four of them: `read` (every output at once),
 * `put` (every output staged, then renamed into place, with mode and owner; ssh-wire.ts), and
 * `run config_test|reload` (only the commands configured on the host); `remove` for a rollback of a first
 * install. One connection per deploy run, opened on first use, and on it one forced-command session
 * (ssh-forced-session.ts) carries every request, rollback included; a host whose forced command predates
 * sessions gets one session per request instead. Verify runs from the hub (TLS handshakes to the subscription's
 * verify target); records live on the hub, sealed (`records`).
 *
 * Hook variables (CERTFLEET_*, RENEWED_*) are not sent: the forced command runs only its configured command line.
 */
export class SshTarget implements ConnectorTarget {
  readonly key: string;
  private session?: Promise<SshSession>;
  private forced?: ForcedSession;
  /** The host's forced command refused `session`: one session per request from then on. */
  private legacy = false;
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

  /**
   * Sends one request over the run's forced-command session (opened on first use, again after the script ended
   * one), or as a session of its own to a host whose script predates sessions. Never rejects for a failing request.
   */
  private async ask(
    session: SshSession,
    line: string,
    opts: { stdin?: Buffer | string; timeoutMs: number; signal?: AbortSignal },
  ): Promise<ExecResult> {
    if (!this.legacy) {
      if (!this.forced?.usable) {
        try {
          this.forced = await ForcedSession.open(session, {
            timeoutMs: this.opts.stepTimeoutMs,
            signal: opts.signal,
          });
        } catch (e) {
          return {
            exitCode: null,
            signal: null,
            stdout: Buffer.alloc(0),
            stderrTail: `[certfleet: ${e instanceof Error ? e.message : String(e)}]`,
            timedOut: e instanceof CertfleetError && e.code === 'UNREACHABLE',
            aborted: !!opts.signal?.aborted,
            durationMs: 0,
          };
        }
      }
      const r = await this.forced.request(line, opts);
      if (!this.forced.legacy) return r;
      this.legacy = true;
    }
    return session.exec(line, opts);
  }

  /** One forced-command request; rejects with the host's own words when it fails. */
  private async request(
    line: string,
    what: string,
    opts: { stdin?: Buffer; signal?: AbortSignal } = {},
  ): Promise<ExecResult> {
    const session = await this.connected(opts.signal);
    const r = await this.ask(session, line, {
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
        ? "the host's forced command refused it: check the `allow` lines of its config, and that it is this certfleet version's deploy/certfleet-ssh-forced-command.sh (docs/connectors.md)"
        : "check the path, its directory and the deploy user's rights on the host",
    );
    if (r.timedOut) this.gaveUp = error;
    throw error;
  }

  async readCurrent(paths: string[], signal?: AbortSignal): Promise<PreviousFile[]> {
    if (paths.length === 0) return [];
    const r = await this.request(`read ${paths.map(remotePath).join(' ')}`, `reading ${paths.join(', ')}`, {
      signal,
    });
    return parseRead(paths, r.stdout);
  }

  async writeFilesAtomic(files: RenderedOutput[], opts: { signal?: AbortSignal }): Promise<void> {
    await this.put(
      files.map((f) => ({ path: f.path, data: f.data, mode: f.mode, owner: f.owner, group: f.group })),
      opts.signal,
    );
  }

  /**
   * One `put`: the host stages every file, and only when all are there renames them into place; when anything
   * fails before that, it removes what it staged, so nothing changed.
   */
  private async put(files: PutFile[], signal?: AbortSignal): Promise<void> {
    if (files.length === 0) return;
    await this.request('put', `uploading ${files.map((f) => f.path).join(', ')}`, {
      stdin: encodePut(files),
      signal,
    });
  }

  async restore(previous: PreviousFile[]): Promise<void> {
    await this.put(
      previous
        .filter((p) => p.previous !== 'absent')
        .map((p) => ({
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
    const r = await this.ask(session, `run ${opts.step} ${remoteSeconds}`, {
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
    this.forced = undefined;
    (await s?.catch(() => undefined))?.close();
  }
}
