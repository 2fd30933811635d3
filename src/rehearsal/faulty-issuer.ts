/**
 * The rehearsal's CA: the hub's real internal CA (dates from the simulated clock) behind the faults a public CA
 * shows: down (the order cannot be placed), rateLimited with Retry-After, and a failed DNS challenge for some
 * names. It never stores anything and honours the signal, as the Issuer contract asks.
 */
import type { Clock } from '../core/clock.ts';
import { CertfleetError } from '../core/errors.ts';
import type { IssueRequest, IssuedVersion, Issuer } from '../issuers/issuer.ts';
import { activeFault, type FaultInstance } from './fault-plan.ts';

export const RATE_LIMIT_RETRY_AFTER_S = 3600;

type Refusal = 'down' | 'rateLimited' | 'dnsFailed';

export class FaultyIssuer implements Issuer {
  readonly kind = 'internal';
  /** Orders the CA answered, by outcome (for the report). */
  readonly answered = { issued: 0, down: 0, rateLimited: 0, dnsFailed: 0 };
  /** Per refusal kind, the time from a refused order to the next order for the same certificate (ms). */
  readonly retrySpacing: Record<Refusal, number[]> = { down: [], rateLimited: [], dnsFailed: [] };
  private readonly lastRefusal = new Map<string, { at: number; kind: Refusal }>();

  constructor(
    private readonly ca: Issuer,
    private readonly faults: FaultInstance[],
    private readonly clock: Clock,
    /** Which endpoint index a certificate name belongs to (the dns fault hits names of chosen endpoints). */
    private readonly indexOf: (certificateName: string) => number,
  ) {}

  /** Counting starts with the run (the fleet's seeding before it is not part of it). */
  resetCounts(): void {
    Object.assign(this.answered, { issued: 0, down: 0, rateLimited: 0, dnsFailed: 0 });
    for (const k of Object.keys(this.retrySpacing) as Refusal[]) this.retrySpacing[k] = [];
    this.lastRefusal.clear();
  }

  private refused(name: string, at: number, kind: Refusal): void {
    this.answered[kind]++;
    this.lastRefusal.set(name, { at, kind });
  }

  async issue(req: IssueRequest): Promise<IssuedVersion> {
    req.signal?.throwIfAborted();
    const t = this.clock.now().getTime();
    const prev = this.lastRefusal.get(req.certificateName);
    if (prev) {
      this.retrySpacing[prev.kind].push(t - prev.at);
      this.lastRefusal.delete(req.certificateName);
    }
    if (activeFault(this.faults, 'ca-down', t)) {
      this.refused(req.certificateName, t, 'down');
      throw new CertfleetError(
        'UNREACHABLE',
        'the CA did not answer (connection refused)',
        'the CA is down: retries continue with backoff',
      );
    }
    if (activeFault(this.faults, 'rate-limit', t)) {
      this.refused(req.certificateName, t, 'rateLimited');
      throw new CertfleetError(
        'RATE_LIMITED',
        `the CA refused the order: urn:ietf:params:acme:error:rateLimited (Retry-After: ${RATE_LIMIT_RETRY_AFTER_S} s)`,
        'wait for the CA to lift the limit',
        { details: { retryAfterSeconds: RATE_LIMIT_RETRY_AFTER_S } },
      );
    }
    if (activeFault(this.faults, 'dns', t, this.indexOf(req.certificateName))) {
      this.refused(req.certificateName, t, 'dnsFailed');
      throw new CertfleetError(
        'ACME_ERROR',
        `dns-01 challenge for ${req.sans[0]} failed: no TXT record found (urn:ietf:params:acme:error:dns)`,
        'check the DNS provider credentials and the zone',
      );
    }
    const issued = await this.ca.issue(req);
    this.answered.issued++;
    return issued;
  }
}
