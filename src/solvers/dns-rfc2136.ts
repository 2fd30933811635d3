import { spawn } from 'node:child_process';
import { CertfleetError } from '../core/errors.ts';
import { challengeRecordName } from './dns-propagation.ts';
import type { ChallengeInput, Solver } from './solver.ts';

export interface Rfc2136Options {
  server: string;
  port?: number;
  /** TSIG key; the secret goes to nsupdate on stdin, never on the command line. */
  keyName: string;
  keyAlgorithm?: string; // hmac-sha256 default
  keySecret: string;
  /** Zone to update; nsupdate finds it via SOA when absent. */
  zone?: string;
  ttl?: number;
  timeoutMs?: number;
  nsupdatePath?: string;
}

/** dns-01 through RFC 2136 dynamic updates signed with TSIG, using BIND's nsupdate. */
export class Rfc2136DnsSolver implements Solver {
  readonly type = 'dns-01' as const;
  constructor(private readonly opts: Rfc2136Options) {}

  private script(ch: ChallengeInput, op: 'add' | 'delete'): string {
    const name = `${challengeRecordName(ch.identifier)}.`;
    const value = JSON.stringify(ch.dnsValue ?? ''); // base64url: no quotes or backslashes to escape
    const o = this.opts;
    return [
      `server ${o.server} ${o.port ?? 53}`,
      `key ${o.keyAlgorithm ?? 'hmac-sha256'}:${o.keyName} ${o.keySecret}`,
      ...(o.zone ? [`zone ${o.zone}`] : []),
      op === 'add'
        ? `update add ${name} ${o.ttl ?? 60} IN TXT ${value}`
        : `update delete ${name} IN TXT ${value}`,
      'send',
      '',
    ].join('\n');
  }

  private run(script: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const timeoutMs = this.opts.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const child = spawn(this.opts.nsupdatePath ?? 'nsupdate', ['-t', String(Math.ceil(timeoutMs / 1000))], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (b) => (stderr = (stderr + b).slice(-4096)));
      child.stdout.on('data', (b) => (stderr = (stderr + b).slice(-4096)));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 2000);
      const onAbort = () => child.kill('SIGKILL');
      signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(
          new CertfleetError(
            'ISSUANCE_FAILED',
            `cannot run nsupdate: ${e.message}`,
            'install bind9-dnsutils',
          ),
        );
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (signal?.aborted) return reject(signal.reason);
        if (code === 0) return resolve();
        const tail = stderr.replaceAll(this.opts.keySecret, '***').trim().slice(-500);
        reject(
          new CertfleetError(
            'ISSUANCE_FAILED',
            `nsupdate to ${this.opts.server}:${this.opts.port ?? 53} failed (exit ${code}): ${tail}`,
            'check the TSIG key name, algorithm and secret, and that the server allows updates to this zone',
            { details: { exitCode: code } },
          ),
        );
      });
      child.stdin.end(script);
    });
  }

  present(ch: ChallengeInput, signal?: AbortSignal): Promise<void> {
    return this.run(this.script(ch, 'add'), signal);
  }

  cleanup(ch: ChallengeInput, signal?: AbortSignal): Promise<void> {
    return this.run(this.script(ch, 'delete'), signal);
  }
}
