import type { Clock } from '../core/clock.ts';
import { certificateNotFound } from '../core/errors.ts';
import type { AuditEvent, Certificate } from '../core/types.ts';
import type { Issuer } from '../issuers/issuer.ts';
import { acmeIssuers } from '../migrate/acme-issuer-info.ts';
import type { FleetRow, Store } from '../store/store.ts';
import { checkAcmeIssuer } from './acme-checks.ts';
import { classifyFailure, type FailureRecord } from './classify-failure.ts';
import { checkDeployments } from './deployment-checks.ts';
import type { Diagnosis, DoctorReport } from './diagnosis.ts';

export interface DoctorDeps {
  store: Store;
  clock: Clock;
  issuers: Map<string, Issuer>;
}

/**
 * Runs every check for one certificate (or all) and the ACME issuers they use. Read-only: it never issues,
 * registers an account or changes state.
 */
export async function runDoctor(
  deps: DoctorDeps,
  opts: { certificate?: string; signal?: AbortSignal } = {},
): Promise<DoctorReport> {
  const { store, clock } = deps;
  let certs: Certificate[];
  if (opts.certificate) {
    const c = await store.getCertificate(opts.certificate);
    if (!c) {
      throw certificateNotFound(opts.certificate);
    }
    certs = [c];
  } else certs = await store.listCertificates();

  const used = new Set(certs.map((c) => c.issuer));
  const infos = acmeIssuers(deps.issuers).filter((i) => !opts.certificate || used.has(i.name));
  const issuers = await Promise.all(
    infos.map(async (i) => ({
      name: i.name,
      directoryUrl: i.directoryUrl,
      diagnoses: await checkAcmeIssuer(i, () => clock.now(), opts.signal),
    })),
  );
  const certificates = [];
  for (const c of certs) {
    const diagnoses = [
      ...(await checkCertificate(store, c, clock.now())),
      ...checkDeployments(await fleetOf(store, c.id)),
    ];
    if (!deps.issuers.has(c.issuer)) {
      diagnoses.unshift({
        check: 'issuer configured',
        status: 'fail',
        message: `issuer "${c.issuer}" is not configured on this hub, so the certificate cannot renew`,
        fix: `add the issuer "${c.issuer}" to the hub config, or move the certificate to a configured issuer`,
      });
    }
    certificates.push({ name: c.name, issuer: c.issuer, diagnoses });
  }
  const all = [...issuers.flatMap((i) => i.diagnoses), ...certificates.flatMap((c) => c.diagnoses)];
  return { at: clock.now().toISOString(), issuers, certificates, ok: !all.some((d) => d.status === 'fail') };
}

/** Every subscription row of a certificate, page by page. */
async function fleetOf(store: Store, certificateId: string): Promise<FleetRow[]> {
  const rows: FleetRow[] = [];
  for (let cursor: string | undefined; ;) {
    const page = await store.fleet({ certificateId }, { limit: 1000, ...(cursor ? { cursor } : {}) });
    rows.push(...page.items);
    if (!page.next) return rows;
    cursor = page.next;
  }
}

async function eventsOf(store: Store, subject: string): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  for (let after = 0; ;) {
    const page = await store.listEvents({ subject, afterId: after, limit: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
    after = page[page.length - 1].id;
  }
}

/** Expiry, the last issuance failure since the last success, and budget deferrals, each in words. */
async function checkCertificate(store: Store, cert: Certificate, now: Date): Promise<Diagnosis[]> {
  const out: Diagnosis[] = [];
  const current = await store.currentVersion(cert.id);
  if (!current) {
    out.push({
      check: 'current version',
      status: 'warn',
      message: 'the certificate has no version yet',
      fix: 'issue one with `certfleet cert renew NAME` after fixing the failures below',
    });
  } else {
    const left = new Date(current.notAfter).getTime() - now.getTime();
    const days = Math.floor(left / 86_400_000);
    out.push(
      left <= 0
        ? {
            check: 'expiry',
            status: 'fail',
            message: `the current version expired at ${current.notAfter}`,
            fix: 'fix the renewal failures below and renew now',
          }
        : {
            check: 'expiry',
            status: 'ok',
            message: `the current version is valid until ${current.notAfter} (${days} days left)`,
            fix: '',
          },
    );
  }
  const events = await eventsOf(store, `certificate:${cert.name}`);
  const lastOk = [...events].reverse().find((e) => e.kind === 'version.issued');
  const since = (e: AuditEvent) => !lastOk || e.id > lastOk.id;
  // version.issue_failed carries the typed details; the planner's renewal.failed only code + message.
  const failure =
    [...events].reverse().find((e) => e.kind === 'version.issue_failed' && since(e)) ??
    [...events].reverse().find((e) => e.kind === 'renewal.failed' && since(e));
  if (failure) {
    const data = failure.data as {
      error?: string;
      message?: string;
      code?: string;
      details?: Record<string, unknown>;
    };
    const record: FailureRecord = {
      error: data.error ?? data.message ?? 'unknown error',
      ...(data.code ? { code: data.code } : {}),
      ...(data.details ? { details: data.details } : {}),
      at: failure.at,
    };
    out.push(classifyFailure(record, now));
  } else if (lastOk) {
    out.push({
      check: 'last issuance',
      status: 'ok',
      message: `the last issuance succeeded at ${lastOk.at}`,
      fix: '',
    });
  }
  const deferred = [...events].reverse().find((e) => e.kind === 'renewal.deferred' && since(e));
  if (deferred) {
    const raw = deferred.data as { limit?: string; freesAt?: string; frees_at?: string; message?: string };
    const d = { ...raw, freesAt: raw.freesAt ?? raw.frees_at };
    const stillBlocked = !d.freesAt || new Date(d.freesAt) > now;
    out.push({
      check: 'rate limited',
      status: stillBlocked ? 'warn' : 'ok',
      message:
        d.message ??
        `renewal deferred by the rate-limit budget (${d.limit ?? 'a limit'})${d.freesAt ? ` until ${d.freesAt}` : ''}`,
      fix: stillBlocked
        ? 'nothing to do unless it is urgent: the planner issues when the slot frees (urgent renewals may use the reserved share); raise the limit in rateLimits only if your CA allows more'
        : 'the slot has freed: the planner issues on its next run',
      evidence: {
        ...(d.limit ? { limit: d.limit } : {}),
        ...(d.freesAt ? { freesAt: d.freesAt } : {}),
        deferredAt: deferred.at,
      },
    });
  }
  return out;
}
