import { spawn } from 'node:child_process';
import { CertfleetError } from '../core/errors.ts';
import type { ChallengeInput, ChallengeType, Solver } from './solver.ts';

export interface ExecHookOptions {
  /** Shell command run to publish the answer (certbot --manual-auth-hook semantics). */
  authCommand: string;
  /** Shell command run to remove it (certbot --manual-cleanup-hook semantics). */
  cleanupCommand?: string;
  challengeType?: ChallengeType;
  timeoutMs?: number;
  /** Extra environment for the hooks (credentials resolved by the caller). */
  env?: Record<string, string>;
}

/**
 * Runs user scripts with certbot's hook variables, so existing certbot hooks work unchanged:
 * CERTBOT_DOMAIN, CERTBOT_VALIDATION (TXT value for dns-01, key authorization for http-01), CERTBOT_TOKEN,
 * and for cleanup CERTBOT_AUTH_OUTPUT (what the auth hook printed).
 */
export class ExecHookSolver implements Solver {
  readonly type: ChallengeType;
  private readonly authOutput = new Map<string, string>();

  constructor(private readonly opts: ExecHookOptions) {
    this.type = opts.challengeType ?? 'dns-01';
  }

  private envFor(ch: ChallengeInput): Record<string, string> {
    return {
      CERTBOT_DOMAIN: ch.identifier,
      CERTBOT_VALIDATION: this.type === 'dns-01' ? (ch.dnsValue ?? '') : ch.keyAuthorization,
      CERTBOT_TOKEN: ch.token,
    };
  }

  async present(ch: ChallengeInput, signal?: AbortSignal): Promise<void> {
    const out = await runHook(
      this.opts.authCommand,
      { ...this.opts.env, ...this.envFor(ch) },
      this.opts.timeoutMs,
      signal,
    );
    this.authOutput.set(ch.token, out.trimEnd());
  }

  async cleanup(ch: ChallengeInput, signal?: AbortSignal): Promise<void> {
    const authOutput = this.authOutput.get(ch.token) ?? '';
    this.authOutput.delete(ch.token);
    if (!this.opts.cleanupCommand) return;
    await runHook(
      this.opts.cleanupCommand,
      { ...this.opts.env, ...this.envFor(ch), CERTBOT_AUTH_OUTPUT: authOutput },
      this.opts.timeoutMs,
      signal,
    );
  }
}

/** Runs `command` with /bin/sh; resolves with stdout; non-zero exit or timeout rejects with a clear error. */
export function runHook(
  command: string,
  env: Record<string, string>,
  timeoutMs = 120_000,
  signal?: AbortSignal,
): Promise<string> {
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so a timeout kills the script's children too
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout = (stdout + b).slice(-65536)));
    child.stderr.on('data', (b) => (stderr = (stderr + b).slice(-65536)));
    let why: 'timeout' | 'abort' | undefined;
    const kill = (reason: 'timeout' | 'abort') => {
      why = reason;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => kill('timeout'), timeoutMs);
    const onAbort = () => kill('abort');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(
        new CertfleetError(
          'ISSUANCE_FAILED',
          `cannot run hook "${command}": ${e.message}`,
          'check the command',
          { cause: e },
        ),
      );
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      const tail = stderr.trim().slice(-500);
      if (why === 'abort') return reject(signal!.reason);
      if (why === 'timeout') {
        return reject(
          new CertfleetError(
            'ISSUANCE_FAILED',
            `hook "${command}" did not finish within ${timeoutMs / 1000} s${tail ? `; stderr: ${tail}` : ''}`,
            'make the hook finish sooner or raise timeoutSeconds',
            { details: { command, timeoutMs } },
          ),
        );
      }
      if (code !== 0) {
        return reject(
          new CertfleetError(
            'ISSUANCE_FAILED',
            `hook "${command}" exited with ${code ?? sig}${tail ? `; stderr: ${tail}` : ''}`,
            'run the hook by hand with the CERTBOT_* variables set and fix what it reports',
            { details: { command, exitCode: code, signal: sig } },
          ),
        );
      }
      resolve(stdout);
    });
  });
}
