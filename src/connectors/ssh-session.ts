import { createHash } from 'node:crypto';
import { Client, type ClientChannel } from 'ssh2';
import { CertfleetError, errorMessage } from '../core/errors.ts';

/**
 * One SSH connection of the hub to a connector endpoint (ssh2): key authentication only, the host key checked
 * against the fingerprint pinned for the endpoint (never a prompt, never a silent accept), and every step bounded
 * by a timeout, so a host that accepts TCP and never answers costs its own deploy that long and nothing more.
 */
export interface SshSettings {
  host: string;
  port: number;
  user: string;
  privateKeyPem: string;
  /** `SHA256:<base64>` as `ssh-keygen -lf` prints it; absent: every host key is refused (and named). */
  hostKeyFingerprint?: string;
  /** For error messages: the endpoint the settings belong to. */
  endpointName: string;
  /** TCP connect + SSH handshake + authentication. */
  connectTimeoutMs: number;
}

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderrTail: string;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
}

const TAIL_BYTES = 2048;
const MAX_STDOUT_BYTES = 64 * 1024 * 1024;

/** The host key's fingerprint as OpenSSH prints it: `SHA256:` + unpadded base64 of SHA-256 over the key blob. */
export function sshFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The algorithm name at the start of an SSH public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, ...). */
export function sshKeyType(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const len = key.readUInt32BE(0);
  return len > 0 && len < 64 && key.length >= 4 + len
    ? key.subarray(4, 4 + len).toString('latin1')
    : 'unknown';
}

export interface SeenHostKey {
  fingerprint: string;
  type: string;
}

/** The host key error: what was seen, what is pinned, and the command that pins it. */
export function hostKeyError(
  s: Pick<SshSettings, 'host' | 'port' | 'endpointName' | 'hostKeyFingerprint'>,
  seen: SeenHostKey,
) {
  const where = `${s.host}:${s.port}`;
  const pin = `certfleet endpoint trust-host-key ${s.endpointName} --fingerprint ${seen.fingerprint}`;
  return s.hostKeyFingerprint
    ? new CertfleetError(
        'HOST_KEY_UNTRUSTED',
        `ssh host ${where} presents host key ${seen.fingerprint} (${seen.type}), but ${s.hostKeyFingerprint} is ` +
          `pinned for endpoint "${s.endpointName}": the host was reinstalled, or someone is in between; nothing was sent`,
        `compare with \`ssh-keygen -lf /etc/ssh/ssh_host_${seen.type.replace(/^ssh-|-.*$/g, '')}_key.pub\` on the host; if it is the host's own key, pin it: ${pin}`,
        { details: { seen: seen.fingerprint, pinned: s.hostKeyFingerprint, key_type: seen.type } },
      )
    : new CertfleetError(
        'HOST_KEY_UNTRUSTED',
        `ssh host ${where} presents host key ${seen.fingerprint} (${seen.type}), which is not pinned for endpoint ` +
          `"${s.endpointName}"; nothing was sent`,
        `check the fingerprint on the host (\`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub\`), then pin it: ${pin}`,
        { details: { seen: seen.fingerprint, key_type: seen.type } },
      );
}

export class SshSession {
  private broken = false;

  private constructor(
    private readonly client: Client,
    readonly hostKey: SeenHostKey,
  ) {
    client.on('close', () => (this.broken = true));
    client.on('error', () => (this.broken = true));
  }

  /** False once the connection closed or a step timed out (the connection is then torn down). */
  get usable(): boolean {
    return !this.broken;
  }

  /**
   * Connects and authenticates. With `acceptAnyHostKey` (trust-host-key's scan only) the host key is recorded and
   * the handshake stops right after it: no authentication is attempted, nothing is sent.
   */
  static connect(s: SshSettings, opts: { signal?: AbortSignal } = {}): Promise<SshSession> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let seen: SeenHostKey | undefined;
      let refused: CertfleetError | undefined;
      let settled = false;
      const finish = (e?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (e) {
          client.destroy();
          reject(e);
        } else {
          resolve(new SshSession(client, seen!));
        }
      };
      const timer = setTimeout(
        () =>
          finish(
            new CertfleetError(
              'UNREACHABLE',
              `ssh host ${s.host}:${s.port} (endpoint "${s.endpointName}") did not complete the SSH handshake within ${s.connectTimeoutMs} ms`,
              'check that sshd runs there and answers, or raise the connector connectTimeoutSeconds',
            ),
          ),
        s.connectTimeoutMs,
      );
      const onAbort = () => finish(opts.signal?.reason ?? new Error('aborted'));
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      client.on('ready', () => finish());
      client.on('error', (e) =>
        finish(
          refused ??
            new CertfleetError(
              'UNREACHABLE',
              `ssh to ${s.user}@${s.host}:${s.port} (endpoint "${s.endpointName}") failed: ${errorMessage(e)}`,
              /authentication/i.test(errorMessage(e))
                ? `the key is not accepted for ${s.user}: add its public key (with the forced command) to ${s.user}'s authorized_keys`
                : 'check host, port and that sshd runs there',
            ),
        ),
      );
      client.on('close', () =>
        finish(
          refused ??
            new CertfleetError(
              'UNREACHABLE',
              `ssh host ${s.host}:${s.port} closed the connection`,
              'check the sshd log on the host',
            ),
        ),
      );
      client.connect({
        host: s.host,
        port: s.port,
        username: s.user,
        privateKey: s.privateKeyPem,
        readyTimeout: s.connectTimeoutMs,
        keepaliveInterval: 0,
        hostVerifier: (key: Buffer) => {
          seen = { fingerprint: sshFingerprint(key), type: sshKeyType(key) };
          if (s.hostKeyFingerprint && seen.fingerprint === s.hostKeyFingerprint) return true;
          refused = hostKeyError(s, seen);
          return false;
        },
      });
    });
  }

  /**
   * Only reads the host key: connects, records it, and stops the handshake right there (nothing authenticated,
   * nothing sent). For `certfleet endpoint trust-host-key`.
   */
  static scanHostKey(
    s: Pick<SshSettings, 'host' | 'port' | 'connectTimeoutMs'>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<SeenHostKey> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let seen: SeenHostKey | undefined;
      const timer = setTimeout(() => done(), s.connectTimeoutMs);
      const done = () => {
        clearTimeout(timer);
        client.destroy();
        if (seen) resolve(seen);
        else
          reject(
            new CertfleetError(
              'UNREACHABLE',
              `ssh host ${s.host}:${s.port} did not present a host key within ${s.connectTimeoutMs} ms`,
              'check host and port, and that sshd runs there',
            ),
          );
      };
      opts.signal?.addEventListener('abort', done, { once: true });
      client.on('error', done);
      client.on('close', done);
      client.connect({
        host: s.host,
        port: s.port,
        username: 'certfleet-host-key-scan',
        readyTimeout: s.connectTimeoutMs,
        hostVerifier: (key: Buffer) => {
          seen = { fingerprint: sshFingerprint(key), type: sshKeyType(key) };
          queueMicrotask(done);
          return false;
        },
      });
    });
  }

  /**
   * Runs one request of the forced command (deploy/certfleet-ssh-forced-command.sh) with `stdin`. Never rejects for
   * a failing command; a timeout or abort tears the whole connection down (a host that stopped answering is not
   * asked again on this connection).
   */
  exec(
    command: string,
    opts: { stdin?: Buffer | string; timeoutMs: number; signal?: AbortSignal },
  ): Promise<ExecResult> {
    const started = performance.now();
    return new Promise((resolve) => {
      const stdout: Buffer[] = [];
      let stdoutBytes = 0;
      let stderr = Buffer.alloc(0);
      let exitCode: number | null = null;
      let signal: string | null = null;
      let timedOut = false;
      let aborted = false;
      let settled = false;
      let channel: ClientChannel | undefined;
      const finish = (extraErr?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        let stderrTail = stderr.toString('utf8');
        if (extraErr) stderrTail += `${stderrTail ? '\n' : ''}${extraErr}`;
        resolve({
          exitCode,
          signal,
          stdout: Buffer.concat(stdout),
          stderrTail: stderrTail.slice(-TAIL_BYTES),
          timedOut,
          aborted,
          durationMs: Math.round(performance.now() - started),
        });
      };
      const tearDown = () => {
        this.broken = true;
        channel?.destroy();
        this.client.destroy();
      };
      const timer = setTimeout(() => {
        timedOut = true;
        tearDown();
        finish(`[certfleet: no answer from the ssh host within ${opts.timeoutMs} ms; connection closed]`);
      }, opts.timeoutMs);
      const onAbort = () => {
        aborted = true;
        tearDown();
        finish('[certfleet: aborted]');
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (this.broken) return finish('[certfleet: the ssh connection is closed]');
      try {
        this.client.exec(command, (err, ch) => {
          if (err) return finish(`[certfleet: ssh exec failed: ${err.message}]`);
          channel = ch;
          ch.on('data', (d: Buffer) => {
            stdoutBytes += d.length;
            if (stdoutBytes <= MAX_STDOUT_BYTES) stdout.push(d);
          });
          ch.stderr.on('data', (d: Buffer) => {
            stderr = Buffer.concat([stderr, d]).subarray(-TAIL_BYTES * 2);
          });
          ch.on('exit', (code: number | null, sig?: string) => {
            exitCode = typeof code === 'number' ? code : null;
            signal = sig ?? null;
          });
          ch.on('close', () => finish());
          ch.on('error', (e: Error) => finish(`[certfleet: ${e.message}]`));
          ch.end(opts.stdin ?? '');
        });
      } catch (e) {
        finish(`[certfleet: ssh exec failed: ${errorMessage(e)}]`);
      }
    });
  }

  /**
   * Opens a session channel running `command` and hands it over with its stdin open (ssh-forced-session.ts speaks
   * over it). Rejects when the host does not open it within `timeoutMs` (the connection is then torn down).
   */
  openChannel(command: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (e: unknown, ch?: ClientChannel) => {
        if (settled) return ch?.destroy();
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (ch) resolve(ch);
        else reject(e);
      };
      const timer = setTimeout(() => {
        this.abandon();
        finish(
          new CertfleetError(
            'UNREACHABLE',
            `the ssh host opened no session channel within ${opts.timeoutMs} ms; connection closed`,
            'check the host; the next deploy connects again',
          ),
        );
      }, opts.timeoutMs);
      const onAbort = () => {
        this.abandon();
        finish(opts.signal?.reason ?? new Error('aborted'));
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (this.broken) return finish(new Error('the ssh connection is closed'));
      try {
        this.client.exec(command, (err, ch) => (err ? finish(err) : finish(undefined, ch)));
      } catch (e) {
        finish(e);
      }
    });
  }

  /** Tears the connection down at once: a host that stopped answering is not asked again on it. */
  abandon(): void {
    this.broken = true;
    this.client.destroy();
  }

  close(): void {
    this.broken = true;
    this.client.end();
  }
}
