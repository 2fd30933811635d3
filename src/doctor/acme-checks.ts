import acme from 'acme-client';
import type { Agent } from 'node:https';
import { CertfleetError, errorMessage, isCertfleetError } from '../core/errors.ts';
import type { AcmeDirectory } from '../issuers/acme/directory.ts';
import { isProblem, problemError } from '../issuers/acme/problem.ts';
import { agentFor, parseBody, rawRequest } from '../issuers/acme/transport.ts';
import type { AcmeIssuerInfo } from '../migrate/acme-issuer-info.ts';
import { classifyFailure } from './classify-failure.ts';
import type { Diagnosis } from './diagnosis.ts';

export const SKEW_WARN_MS = 30_000;
export const SKEW_FAIL_MS = 10 * 60_000;

/**
 * Checks one ACME issuer from the hub: the directory answers (and its TLS is trusted), the hub clock agrees with
 * the CA's `Date` header, and the stored account is known and valid at the CA (newAccount with
 * onlyReturnExisting, RFC 8555 section 7.3.1: it never creates one).
 */
export async function checkAcmeIssuer(
  info: AcmeIssuerInfo,
  now: () => Date,
  signal?: AbortSignal,
): Promise<Diagnosis[]> {
  const agent = agentFor(info.caPem);
  try {
    const out: Diagnosis[] = [];
    let res;
    const sentAt = now();
    try {
      res = await rawRequest(info.directoryUrl, { agent, signal, timeoutMs: 10_000 });
    } catch (e) {
      const f = classifyFailure({
        error: errorMessage(e),
        ...(isCertfleetError(e) ? { code: e.code, ...(e.details ? { details: e.details } : {}) } : {}),
      });
      return [{ ...f, check: f.check === 'TLS trust' ? 'TLS trust' : 'directory reachable' }];
    }
    const dir = parseBody(res) as AcmeDirectory | string;
    if (res.status !== 200 || typeof dir !== 'object' || typeof dir.newAccount !== 'string') {
      return [
        {
          check: 'directory reachable',
          status: 'fail',
          message: `${info.directoryUrl} answered HTTP ${res.status} without an ACME directory`,
          fix: 'check the issuer directoryUrl (it usually ends in /directory or /dir)',
          evidence: { status: res.status },
        },
      ];
    }
    out.push({
      check: 'directory reachable',
      status: 'ok',
      message: `${info.directoryUrl} answers`,
      fix: '',
    });
    out.push({
      check: 'TLS trust',
      status: 'ok',
      message: `the CA's TLS certificate is trusted${info.caPem ? ' (issuer caFile)' : ''}`,
      fix: '',
    });
    out.push(clockSkew(res.headers.date, sentAt));
    out.push(await checkAccount(info, dir, agent, signal));
    return out;
  } finally {
    agent?.destroy();
  }
}

function clockSkew(dateHeader: string | undefined, hubNow: Date): Diagnosis {
  const caTime = dateHeader ? Date.parse(dateHeader) : NaN;
  if (Number.isNaN(caTime)) {
    return {
      check: 'clock skew',
      status: 'warn',
      message: 'the CA sent no Date header to compare clocks with',
      fix: 'check the hub clock against NTP',
    };
  }
  // The Date header has one-second resolution: allow that much.
  const skew = hubNow.getTime() - caTime;
  const abs = Math.abs(skew);
  const evidence = {
    hubTime: hubNow.toISOString(),
    caTime: new Date(caTime).toISOString(),
    skewSeconds: Math.round(skew / 1000),
  };
  if (abs <= SKEW_WARN_MS) {
    return {
      check: 'clock skew',
      status: 'ok',
      message: `the hub clock is within ${Math.max(1, Math.round(abs / 1000))} s of the CA's`,
      fix: '',
      evidence,
    };
  }
  return {
    check: 'clock skew',
    status: abs > SKEW_FAIL_MS ? 'fail' : 'warn',
    message: `the hub clock is ${Math.round(abs / 1000)} s ${skew > 0 ? 'ahead of' : 'behind'} the CA's (Date header): renewal times, expiry checks and new certificates' notBefore disagree`,
    fix: 'synchronise the hub clock with NTP (timedatectl set-ntp true, or chrony/ntpd)',
    evidence,
  };
}

async function checkAccount(
  info: AcmeIssuerInfo,
  dir: AcmeDirectory,
  agent: Agent | undefined,
  signal?: AbortSignal,
): Promise<Diagnosis> {
  const stored = info.accountStore ? await info.accountStore.load(info.directoryUrl) : undefined;
  if (!stored) {
    return {
      check: 'account valid',
      status: 'ok',
      message: 'no account stored yet: the hub registers one on the first issuance',
      fix: '',
    };
  }
  const client = new acme.Client({ directoryUrl: info.directoryUrl, accountKey: stored.accountKeyPem });
  // Same per-issuer transport as AcmeIssuer: this CA's TLS trust, this call's signal, problems as typed errors.
  const http = (client as any).http;
  http.directoryCache = dir;
  http.directoryTimestamp = Math.floor(Date.now() / 1000);
  http.request = async (url: string, method: string, opts: { data?: unknown } = {}) => {
    const res = await rawRequest(url, {
      method: method.toUpperCase(),
      headers: { 'content-type': 'application/jose+json' },
      body: opts.data === undefined ? undefined : JSON.stringify(opts.data),
      agent,
      signal,
    });
    const body = parseBody(res);
    if (res.status >= 400 && isProblem(body) && body.type !== 'urn:ietf:params:acme:error:badNonce') {
      throw problemError({ ...body, status: body.status ?? res.status });
    }
    return { status: res.status, headers: res.headers, data: body };
  };
  try {
    const resp = await (client as any).api.createAccount({ onlyReturnExisting: true });
    const url = resp.headers.location as string | undefined;
    const status = resp.data?.status as string | undefined;
    if (status && status !== 'valid') {
      return {
        check: 'account or key problems',
        status: 'fail',
        message: `the CA says the account ${url ?? ''} is ${status}`,
        fix: 'a deactivated or revoked account cannot be reused: remove the stored account so the hub registers a new one',
        evidence: { accountUrl: url, accountStatus: status },
      };
    }
    if (stored.accountUrl && url && stored.accountUrl !== url) {
      return {
        check: 'account or key problems',
        status: 'warn',
        message: `the stored account key belongs to ${url}, not to the stored account URL ${stored.accountUrl}`,
        fix: 'store the account again (it is re-read on the next issuance) or remove it so a new one is registered',
        evidence: { accountUrl: url, storedAccountUrl: stored.accountUrl },
      };
    }
    return {
      check: 'account valid',
      status: 'ok',
      message: `account ${url ?? stored.accountUrl} is valid`,
      fix: '',
      evidence: { accountUrl: url },
    };
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    const ce = isCertfleetError(e) ? e : new CertfleetError('ACME_ERROR', errorMessage(e));
    const d = classifyFailure({
      error: ce.message,
      code: ce.code,
      ...(ce.details ? { details: ce.details } : {}),
    });
    return { ...d, evidence: { ...d.evidence, storedAccountUrl: stored.accountUrl } };
  }
}
