import { CertfleetError } from '../core/errors.ts';
import { challengeRecordName } from './dns-propagation.ts';
import type { ChallengeInput, Solver } from './solver.ts';

/** dns-01 through pebble-challtestsrv's management API (test and staging setups). */
export class ChalltestsrvDnsSolver implements Solver {
  readonly type = 'dns-01' as const;
  constructor(private readonly managementUrl: string) {}

  private async post(path: string, body: object, signal?: AbortSignal): Promise<void> {
    const url = `${this.managementUrl.replace(/\/+$/, '')}/${path}`;
    let res: Response;
    try {
      res = await fetch(url, { method: 'POST', body: JSON.stringify(body), signal });
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw new CertfleetError('UNREACHABLE', `cannot reach challtestsrv at ${url}`, 'check managementUrl', {
        cause: e,
      });
    }
    if (!res.ok) {
      throw new CertfleetError(
        'ISSUANCE_FAILED',
        `challtestsrv ${path} answered HTTP ${res.status}`,
        'check managementUrl',
      );
    }
  }

  present(ch: ChallengeInput, signal?: AbortSignal): Promise<void> {
    return this.post(
      'set-txt',
      { host: `${challengeRecordName(ch.identifier)}.`, value: ch.dnsValue },
      signal,
    );
  }

  cleanup(ch: ChallengeInput, signal?: AbortSignal): Promise<void> {
    return this.post('clear-txt', { host: `${challengeRecordName(ch.identifier)}.` }, signal);
  }
}
