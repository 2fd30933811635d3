/** A whole order against the staging directory (or the issuer's own), reported step by step; nothing stored. */
import { CertfleetError } from '../../core/errors.ts';
import type { Certificate } from '../../core/types.ts';
import type { IssueStep } from '../../issuers/issuer.ts';
import { inspectCertificate } from '../../pki/inspect.ts';
import type { AcmeRuntime } from '../acme/acme-runtime.ts';
import type { HubContext } from '../hub-context.ts';
import { errorJson } from './issuance.ts';

export interface DryRunResult {
  ok: boolean;
  certificate: string;
  issuer: string;
  directoryUrl?: string;
  steps: IssueStep[];
  totalMs: number;
  issued?: { serial: string; notAfter: string; fingerprint: string };
  error?: { code: string; message: string; hint: string };
}

export async function dryRun(
  ctx: HubContext,
  acme: AcmeRuntime | undefined,
  cert: Certificate,
  signal?: AbortSignal,
): Promise<DryRunResult> {
  const entry = acme?.entries.get(cert.issuer);
  const issuer = entry ? entry.dryRunIssuer() : ctx.issuers.get(cert.issuer);
  if (!issuer)
    throw new CertfleetError(
      'VALIDATION_FAILED',
      `issuer "${cert.issuer}" is not configured`,
      'fix the hub config',
    );
  const steps: IssueStep[] = [];
  const started = Date.now();
  const base = {
    certificate: cert.name,
    issuer: cert.issuer,
    ...(entry ? { directoryUrl: entry.config.staging?.directoryUrl ?? entry.config.directoryUrl } : {}),
  };
  try {
    const issued = await issuer.issue({
      certificateName: cert.name,
      sans: cert.sans,
      keyType: cert.keyType,
      lifetimeDays: cert.lifetimeDays,
      ...(signal ? { signal } : {}),
      onStep: (s) => steps.push(s),
    });
    if (!entry) steps.push({ name: 'issue', detail: 'signed by the internal CA', ms: Date.now() - started });
    const info = inspectCertificate(issued.certPem);
    return {
      ...base,
      ok: true,
      steps,
      totalMs: Date.now() - started,
      issued: { serial: info.serial, notAfter: info.notAfter.toISOString(), fingerprint: info.fingerprint },
    };
  } catch (e) {
    return { ...base, ok: false, steps, totalMs: Date.now() - started, error: errorJson(e) };
  }
}
