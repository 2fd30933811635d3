import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { errorMessage } from '../core/errors.ts';
import type { ExecResult, SshSession } from './ssh-session.ts';

/**
 * One session of the forced command (deploy/certfleet-ssh-forced-command.sh, `session 1`) serving a sequence of
 * requests over one SSH session channel, so a deploy starts sshd's session process and the script's shells once
 * instead of once per request. Each request goes out as `NONCE REQUEST ARGS...` plus its own stdin; its answer
 * ends where the script writes `NONCE STATUS` on stdout and `NONCE` on stderr (NONCE: fresh random hex per
 * request, which no file content or command output can predict). Requests run one at a time, in call order.
 *
 * A request the script refuses ends the session (exit 64, its message on stderr): that request's result carries
 * both, and `usable` turns false. A timeout or abort tears the whole connection down, as SshSession.exec does.
 */
export const SESSION_PROTOCOL = 1;

const HELLO = `certfleet-session ${SESSION_PROTOCOL}\n`;
const TAIL_BYTES = 2048;
/** An answer larger than this is not the forced command's: the connection is torn down. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

export class ForcedSession {
  private out = Buffer.alloc(0);
  private err = Buffer.alloc(0);
  private hello = false;
  private ended = false;
  private exitCode: number | null = null;
  private exitSignal: string | null = null;
  /** Called whenever data arrives or the channel ends. */
  private wake = () => {};
  private tail: Promise<unknown> = Promise.resolve();
  /** The host runs a forced command older than sessions (it refused `session`): ask it one request per session. */
  legacy = false;

  private constructor(
    private readonly ssh: SshSession,
    private readonly channel: ClientChannel,
  ) {
    channel.on('data', (d: Buffer) => {
      this.out = Buffer.concat([this.out, d]);
      this.wake();
    });
    channel.stderr.on('data', (d: Buffer) => {
      this.err = Buffer.concat([this.err, d]);
      this.wake();
    });
    channel.on('exit', (code: number | null, sig?: string) => {
      this.exitCode = typeof code === 'number' ? code : null;
      this.exitSignal = sig ?? null;
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    channel.on('close', end);
    channel.on('error', end);
  }

  /**
   * Starts `session 1` on the connection. The first request goes out without waiting for the script's hello
   * (one round trip less); its answer is checked to follow the hello.
   */
  static async open(ssh: SshSession, opts: { timeoutMs: number; signal?: AbortSignal }) {
    return new ForcedSession(ssh, await ssh.openChannel(`session ${SESSION_PROTOCOL}`, opts));
  }

  /** False once the script ended the session (a refused request) or the connection closed. */
  get usable(): boolean {
    return !this.ended && !this.legacy && this.ssh.usable;
  }

  /** Ends the session: the script sees the end of its stdin and exits 0. */
  end(): void {
    this.channel.end();
  }

  /** One request (`line`: the request and its words) with its stdin; never rejects, like SshSession.exec. */
  request(
    line: string,
    opts: { stdin?: Buffer | string; timeoutMs: number; signal?: AbortSignal },
  ): Promise<ExecResult> {
    const run = this.tail.then(() => this.ask(line, opts));
    this.tail = run;
    return run;
  }

  private ask(
    line: string,
    opts: { stdin?: Buffer | string; timeoutMs: number; signal?: AbortSignal },
  ): Promise<ExecResult> {
    const started = performance.now();
    const nonce = randomBytes(12).toString('hex');
    return new Promise((resolve) => {
      let settled = false;
      const finish = (r: Omit<ExecResult, 'durationMs' | 'timedOut' | 'aborted'>, flags = {}) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.wake = () => {};
        resolve({
          timedOut: false,
          aborted: false,
          ...r,
          ...flags,
          stderrTail: r.stderrTail.slice(-TAIL_BYTES),
          durationMs: Math.round(performance.now() - started),
        });
      };
      const failed = (why: string, flags: Partial<ExecResult> = {}) =>
        finish(
          {
            exitCode: null,
            signal: null,
            stdout: Buffer.alloc(0),
            stderrTail: `${this.err.toString('utf8')}${this.err.length ? '\n' : ''}[certfleet: ${why}]`,
          },
          flags,
        );
      const timer = setTimeout(() => {
        this.ssh.abandon();
        failed(`no answer from the ssh host within ${opts.timeoutMs} ms; connection closed`, {
          timedOut: true,
        });
      }, opts.timeoutMs);
      const onAbort = () => {
        this.ssh.abandon();
        failed('aborted', { aborted: true });
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });

      this.wake = () => {
        if (this.out.length + this.err.length > MAX_ANSWER_BYTES) {
          this.ssh.abandon();
          return failed(`the host's answer exceeds ${MAX_ANSWER_BYTES} bytes; connection closed`);
        }
        if (!this.hello) {
          const nl = this.out.indexOf(0x0a);
          if (nl >= 0) {
            if (this.out.subarray(0, nl + 1).toString('latin1') !== HELLO) {
              this.ssh.abandon();
              return failed(
                `the host answered ${JSON.stringify(this.out.subarray(0, Math.min(nl, 60)).toString('latin1'))} to \`session ${SESSION_PROTOCOL}\`, not the forced command's hello`,
              );
            }
            this.hello = true;
            this.out = this.out.subarray(nl + 1);
          }
        }
        if (this.hello) {
          const outMark = this.out.indexOf(`${nonce} `);
          const eol = outMark >= 0 ? this.out.indexOf(0x0a, outMark) : -1;
          const errMark = this.err.indexOf(`${nonce}\n`);
          if (eol >= 0 && errMark >= 0) {
            const status = Number(this.out.subarray(outMark + nonce.length + 1, eol).toString('latin1'));
            const r = {
              exitCode: Number.isInteger(status) ? status : null,
              signal: null,
              stdout: this.out.subarray(0, outMark),
              stderrTail: this.err.subarray(0, errMark).toString('utf8'),
            };
            this.out = this.out.subarray(eol + 1);
            this.err = this.err.subarray(errMark + nonce.length + 1);
            return finish(r);
          }
        }
        if (!this.ended) return;
        const stderr = this.err.toString('utf8');
        // An older forced command refuses the word `session` before reading anything: nothing was done.
        if (!this.hello && this.exitCode === 64 && /unknown request: session/.test(stderr))
          this.legacy = true;
        finish({ exitCode: this.exitCode, signal: this.exitSignal, stdout: this.out, stderrTail: stderr });
      };
      try {
        this.channel.write(`${nonce} ${line}\n`);
        if (opts.stdin?.length) this.channel.write(opts.stdin);
      } catch (e) {
        return failed(`ssh write failed: ${errorMessage(e)}`);
      }
      this.wake();
    });
  }
}
