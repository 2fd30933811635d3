import { mkdir, rm, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { CertfleetError, errorMessage } from '../core/errors.ts';
import type { ChallengeInput, Solver } from './solver.ts';

const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

/** http-01 through a web server's document root: writes <webroot>/.well-known/acme-challenge/<token>. */
export class WebrootSolver implements Solver {
  readonly type = 'http-01' as const;
  constructor(private readonly webroot: string) {}

  private pathFor(token: string): string {
    // A token is base64url; refusing anything else keeps a hostile CA from writing outside the webroot.
    if (!TOKEN.test(token)) {
      throw new CertfleetError(
        'ACME_ERROR',
        'the CA sent a challenge token that is not base64url',
        'report it to the CA',
      );
    }
    return join(this.webroot, '.well-known', 'acme-challenge', token);
  }

  async present(ch: ChallengeInput): Promise<void> {
    const file = this.pathFor(ch.token);
    try {
      await mkdir(join(this.webroot, '.well-known', 'acme-challenge'), { recursive: true, mode: 0o755 });
      await writeFile(file, ch.keyAuthorization, { mode: 0o644 });
      await chmod(file, 0o644); // the umask must not hide the file from the web server
    } catch (e) {
      throw new CertfleetError(
        'ISSUANCE_FAILED',
        `cannot write the http-01 answer to ${file}: ${errorMessage(e)}`,
        'check that the webroot exists and the hub may write to it',
        { cause: e },
      );
    }
  }

  async cleanup(ch: ChallengeInput): Promise<void> {
    await rm(this.pathFor(ch.token), { force: true });
  }
}
