import { CertfleetError } from '../../core/errors.ts';

/** An RFC 7807 problem document as ACME uses it (RFC 8555 section 6.7). */
export interface AcmeProblem {
  type?: string;
  detail?: string;
  status?: number;
  subproblems?: Array<{ type?: string; detail?: string; identifier?: { type: string; value: string } }>;
}

const PREFIX = 'urn:ietf:params:acme:error:';

const HINTS: Record<string, string> = {
  unauthorized:
    'the CA could not confirm control of the name: check that the solver answers where the CA looks (port 80 / DNS TXT) for this name',
  incorrectResponse:
    'the CA fetched a wrong answer: check for another server or stale record answering the challenge',
  connection:
    'the CA could not connect to the challenge address: check DNS records, firewall and port forwarding',
  dns: 'the CA could not resolve the name: check the DNS records of the domain',
  caa: "a CAA record forbids this CA: add the CA's domain to the CAA records",
  rejectedIdentifier: 'the CA refuses to issue for this name: check its spelling and the CA policy',
  malformed: 'the CA rejected the request as malformed: check the names and key type',
  rateLimited: 'the CA rate limit was hit: wait for the time it names, or batch names into fewer orders',
  badNonce: 'the CA kept rejecting nonces: retry later',
  accountDoesNotExist: 'the stored ACME account is unknown to the CA: remove it so a new one is registered',
  externalAccountRequired: 'this CA needs external account binding: set eab.kid and eab.hmacKey from the CA',
  unauthorizedAccount: 'the account is not allowed to do this: check the account and CA settings',
  userActionRequired: 'the CA needs you to act (for example accept new terms): visit the URL in its detail',
  badCSR: 'the CA rejected the CSR: check the key type and names',
  badPublicKey: 'the CA rejected the key type: pick another key type for this certificate',
  badRevocationReason: 'the CA does not accept that revocation reason: use another one',
  alreadyRevoked: 'the certificate is already revoked: nothing to do',
  serverInternal: 'the CA had an internal error: retry later',
  invalidProfile: "the CA does not offer that profile: set the certificate's profile to one the CA lists",
};

/** Short problem type: `unauthorized` for `urn:ietf:params:acme:error:unauthorized`. */
export function shortType(type: string | undefined): string {
  if (!type) return 'unknown';
  return type.startsWith(PREFIX) ? type.slice(PREFIX.length) : type;
}

/**
 * Turns a CA problem document into the error users see: '<type>: <CA detail>', full type in details. The answer's
 * Retry-After (RFC 8555 §6.6: rateLimited answers carry one) goes into details.retryAfterSeconds, which the planner
 * honours before the next attempt.
 */
export function problemError(p: AcmeProblem, context?: string, retryAfterSeconds?: number): CertfleetError {
  const short = shortType(p.type);
  const sub = (p.subproblems ?? [])
    .map((s) => `${s.identifier?.value ?? '?'}: ${shortType(s.type)}: ${s.detail ?? ''}`.trim())
    .join('; ');
  const detail = [p.detail, sub].filter(Boolean).join(' | ') || 'no detail given';
  return new CertfleetError(
    short === 'rateLimited' ? 'RATE_LIMITED' : 'ACME_ERROR',
    `${context ? `${context}: ` : ''}${short}: ${detail}`,
    HINTS[short] ?? 'read the CA detail above; the problem type is in details.type',
    {
      details: {
        type: p.type ?? 'unknown',
        status: p.status,
        subproblems: p.subproblems,
        ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
      },
    },
  );
}

export function isProblem(body: unknown): body is AcmeProblem {
  return typeof body === 'object' && body !== null && typeof (body as AcmeProblem).type === 'string';
}
