import { retryAfterSeconds } from '../issuers/acme/transport.ts';
import type { Diagnosis } from './diagnosis.ts';

/** A recorded issuance failure: the `version.issue_failed` event's data, or a thrown CertfleetError. */
export interface FailureRecord {
  error: string;
  code?: string;
  details?: Record<string, unknown>;
  at?: string;
}

const ACME = 'urn:ietf:params:acme:error:';
const ACCOUNT_TYPES = new Set([
  'accountDoesNotExist',
  'unauthorizedAccount',
  'badPublicKey',
  'badSignatureAlgorithm',
  'externalAccountRequired',
  'userActionRequired',
]);

/** The ACME problem type without its URN prefix, from details.type or the message's "<type>: " part. */
function problemType(f: FailureRecord): string | undefined {
  const t = typeof f.details?.type === 'string' ? f.details.type : undefined;
  if (t) return t.startsWith(ACME) ? t.slice(ACME.length) : t;
  const m =
    /\b(unauthorized|incorrectResponse|connection|dns|rateLimited|rejectedIdentifier|caa|badNonce|accountDoesNotExist|unauthorizedAccount|badPublicKey|externalAccountRequired|userActionRequired|serverInternal|malformed): /.exec(
      f.error,
    );
  return m?.[1];
}

/** The CA's own words: the text after "<type>: ". */
function caDetail(f: FailureRecord, type: string): string {
  const i = f.error.indexOf(`${type}: `);
  return i >= 0 ? f.error.slice(i + type.length + 2) : f.error;
}

/**
 * Turns an issuance failure into a diagnosis in words with its fix. The rules read the typed facts first
 * (ACME problem type, hook exit code, DNS record name), then the CA's wording for what only the wording says
 * (a 404 versus a wrong answer).
 */
export function classifyFailure(f: FailureRecord, now = new Date()): Diagnosis {
  const d = f.details ?? {};
  const type = problemType(f);
  const when = f.at ? { failedAt: f.at } : {};

  if (type === 'rateLimited' || f.code === 'RATE_LIMITED') {
    const detail = caDetail(f, 'rateLimited');
    const retry = /retry after ([0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:]+(?:\s?UTC|Z)?)/i.exec(detail)?.[1];
    const retryAfter =
      typeof d.retryAfter === 'string' ? retryAfterSeconds(d.retryAfter, now.getTime()) : undefined;
    const frees = retry
      ? new Date(retry.replace(' UTC', 'Z').replace(' ', 'T')).toISOString()
      : retryAfter !== undefined
        ? new Date(now.getTime() + retryAfter * 1000).toISOString()
        : undefined;
    const limit = /exact set/i.test(detail)
      ? 'New Certificates per Exact Set of Hostnames'
      : /registered domain|certificates already issued for/i.test(detail)
        ? 'New Certificates per Registered Domain'
        : /new orders|too many orders/i.test(detail)
          ? 'New Orders per Account'
          : /failed authorization|authorization failures/i.test(detail)
            ? 'Authorization Failures per Hostname per Account'
            : /accounts per ip|registrations/i.test(detail)
              ? 'New Registrations per IP Address'
              : 'unnamed';
    return {
      check: 'rate limited',
      status: 'fail',
      message: `the CA refused the order: ${limit} limit reached${frees ? `; it frees at ${frees}` : ''} (CA: ${detail})`,
      fix: `wait until ${frees ?? 'the time the CA names'} (the planner retries on its own); meanwhile do not trigger renewals by hand, and combine names into fewer certificates if this repeats`,
      evidence: { limit, ...(frees ? { freesAt: frees } : {}), caDetail: detail, ...when },
    };
  }

  if (typeof d.command === 'string' && (d.exitCode !== undefined || d.signal || d.timeoutMs)) {
    const stderr = /; stderr: ([\s\S]*)$/.exec(f.error)?.[1];
    const timedOut = typeof d.timeoutMs === 'number';
    return {
      check: 'hook failed',
      status: 'fail',
      message: timedOut
        ? `the hook "${d.command}" did not finish within ${Number(d.timeoutMs) / 1000} s`
        : `the hook "${d.command}" exited with ${d.exitCode ?? d.signal}${stderr ? `: ${stderr.split('\n').pop()}` : ''}`,
      fix: 'run the hook by hand with CERTBOT_DOMAIN, CERTBOT_VALIDATION and CERTBOT_TOKEN set and fix what it reports (credentials, zone name, PATH)',
      evidence: {
        command: d.command,
        ...(d.exitCode !== undefined ? { exitCode: d.exitCode } : {}),
        ...(d.signal ? { signal: d.signal } : {}),
        ...(stderr ? { stderrTail: stderr } : {}),
        ...when,
      },
    };
  }

  if (
    (typeof d.name === 'string' && Array.isArray(d.resolvers)) ||
    /DNS TXT record .* not visible/.test(f.error)
  ) {
    return {
      check: 'DNS TXT not visible',
      status: 'fail',
      message: `the dns-01 TXT record ${d.name ?? ''} never became visible at ${(d.resolvers as string[] | undefined)?.join(', ') ?? 'the resolvers'}, so the challenge was not answered`,
      fix: 'check that the DNS provider accepted the record (credentials, zone), that the resolvers ask the authoritative servers, and raise propagation.timeoutSeconds for slow providers',
      evidence: { record: d.name, resolvers: d.resolvers, error: f.error, ...when },
    };
  }

  if (type === 'unauthorized' || type === 'incorrectResponse') {
    const detail = caDetail(f, type);
    const status = /\b(\d{3})\b/.exec(
      /status code[^0-9]*(\d{3})|HTTP (\d{3})|: (\d{3})\b/.exec(detail)?.[0] ?? '',
    )?.[1];
    const url = /(https?:\/\/[^\s"]+\/\.well-known\/acme-challenge\/[A-Za-z0-9_-]+)/.exec(detail)?.[1];
    if (status === '404' || /\b404\b/.test(detail)) {
      return {
        check: 'wrong webroot (404)',
        status: 'fail',
        message: `the CA fetched ${url ?? 'the challenge URL'} and got 404 Not Found: the answer was not where the web server serves /.well-known/acme-challenge/`,
        fix: "point the webroot solver at the directory the web server serves for this name (its document root), or proxy /.well-known/acme-challenge/ to the hub's http-01 listener",
        evidence: { caDetail: detail, ...(url ? { url } : {}), ...when },
      };
    }
    // Boulder: 'Expected "X" (got "Y")'; Pebble: 'did not match this challenge "X" != "Y"'.
    const m =
      /Expected "?([^"\s]+)"?.*?got "([^"]*)"/is.exec(detail) ?? /"([^"]+)" != "([^"]*)"/.exec(detail);
    return {
      check: 'unauthorized',
      status: 'fail',
      message: m
        ? `the CA fetched the challenge and got "${m[2].slice(0, 120)}" instead of the expected key authorization: another server answers for this name`
        : `the CA could not confirm control of the name: ${detail}`,
      fix: 'make sure the name points at the host running the solver (DNS A/AAAA), that nothing else answers /.well-known/acme-challenge/ on port 80 (another server, a stale proxy rule, a CDN), and that all hubs share the http-01 store',
      evidence: {
        caDetail: detail,
        ...(m ? { expected: m[1], served: m[2] } : {}),
        ...(url ? { url } : {}),
        ...when,
      },
    };
  }

  if (type === 'connection') {
    const detail = caDetail(f, type);
    const refused = /refused/i.test(detail);
    return {
      check: refused ? 'connection refused on port 80' : 'timeout on port 80',
      status: 'fail',
      message: `the CA could not connect to the name to validate it: ${detail}`,
      fix: refused
        ? "nothing listens on port 80 where the name points: start the hub's http-01 listener (http01.listen) or the web server, and check port forwarding"
        : 'a firewall or a wrong DNS record drops the connection: open port 80 to the internet and check the A/AAAA records',
      evidence: { caDetail: detail, ...when },
    };
  }

  if (type === 'dns') {
    return {
      check: 'DNS problem at the CA',
      status: 'fail',
      message: `the CA could not resolve the name: ${caDetail(f, type)}`,
      fix: 'check the A/AAAA (http-01) or _acme-challenge TXT (dns-01) records at the authoritative servers, and DNSSEC',
      evidence: { caDetail: caDetail(f, type), ...when },
    };
  }

  if ((type && ACCOUNT_TYPES.has(type)) || /account/i.test(String(d.type ?? ''))) {
    return {
      check: 'account or key problems',
      status: 'fail',
      message: `the CA refused the ACME account: ${type}: ${caDetail(f, type ?? '')}`,
      fix:
        type === 'accountDoesNotExist'
          ? 'the stored account key is unknown to the CA (replaced, or the account was deleted): remove the stored account so the hub registers a new one'
          : type === 'externalAccountRequired'
            ? 'set eab.kid and eab.hmacKeyRef on the issuer with the values from the CA'
            : type === 'userActionRequired'
              ? 'visit the URL in the CA detail (new terms of service) and agree, then retry'
              : 'check the account status at the CA; deactivated accounts cannot be reused: remove it so a new one is registered',
      evidence: { problemType: type, caDetail: caDetail(f, type ?? ''), ...when },
    };
  }

  if (type === 'rejectedIdentifier' || type === 'caa') {
    return {
      check: 'name rejected',
      status: 'fail',
      message: `the CA will not issue for this name: ${caDetail(f, type)}`,
      fix:
        type === 'caa'
          ? "add the CA's domain to the CAA records of the name"
          : 'check the spelling of the names and the CA policy (public suffixes, blocked names)',
      evidence: { caDetail: caDetail(f, type), ...when },
    };
  }

  if (f.code === 'UNREACHABLE') {
    const tls = /certificate|self.signed|SSL|TLS/i.test(`${d.errno ?? ''} ${f.error}`);
    return {
      check: tls ? 'TLS trust' : 'directory reachable',
      status: 'fail',
      message: f.error,
      fix: tls
        ? "the CA's TLS certificate is not trusted: set caFile on the issuer to the CA that signs it"
        : 'check the directory URL, DNS, firewall and proxy settings of the hub',
      evidence: { ...d, ...when },
    };
  }

  return {
    check: 'issuance failed',
    status: 'fail',
    message: f.error,
    fix: type
      ? `read the CA detail; problem type ${type}`
      : 'read the message; `certfleet events` shows the history',
    evidence: { ...(f.code ? { code: f.code } : {}), ...(type ? { problemType: type } : {}), ...when },
  };
}
