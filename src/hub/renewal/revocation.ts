/**
 * Revoking a certificate's current version: at the CA (ACME) or only on record (the internal CA has no CRL or
 * OCSP responder yet), then `revoked` in renewal_state and the `version.revoked` event in one commit. From then
 * on the renewal chain's first link keeps the certificate due until a replacement is issued and served, so a replacement
 * that fails right after the revocation is retried by the planner instead of being forgotten.
 */
import { CertfleetError } from '../../core/errors.ts';
import type { Certificate, CertificateVersion } from '../../core/types.ts';
import { REVOCATION_REASONS, type RevocationReason } from '../../issuers/acme/acme-issuer.ts';
import type { Actor } from '../../store/store.ts';
import type { AcmeRuntime } from '../acme/acme-runtime.ts';
import type { HubContext } from '../hub-context.ts';
import { storeChange, withRevoked } from './renewal-state.ts';

export interface RevokeResult {
  revoked: { serial: string; reason: RevocationReason; issuer: string };
  note?: string;
  renewed?: { serial: string; notAfter: string; id: string };
  renewalError?: { code: string; message: string; hint: string };
}

const INTERNAL_NOTE =
  'the internal CA has no CRL or OCSP responder yet: the revocation is recorded, but clients cannot learn of it; the certificate is replaced now';

export function assertRevocationReason(reason: string): asserts reason is RevocationReason {
  if (!(reason in REVOCATION_REASONS))
    throw new CertfleetError(
      'BAD_REQUEST',
      `unknown revocation reason "${reason}"`,
      `use one of: ${Object.keys(REVOCATION_REASONS).join(', ')}`,
    );
}

/** Revokes the current version and records it; the caller then issues the replacement. */
export async function revokeCurrent(
  ctx: HubContext,
  acme: AcmeRuntime | undefined,
  cert: Certificate,
  reason: RevocationReason,
  actor: Actor,
  signal?: AbortSignal,
): Promise<{ version: CertificateVersion; result: RevokeResult }> {
  const version = await ctx.store.currentVersion(cert.id);
  if (!version)
    throw new CertfleetError(
      'NOT_FOUND',
      `certificate "${cert.name}" has no version to revoke`,
      'nothing to do',
    );
  const entry = acme?.entries.get(cert.issuer);
  if (entry) await entry.issuer.revoke(version.certPem, reason, signal);
  const note = entry ? undefined : INTERNAL_NOTE;
  await ctx.store.commitRenewal({
    certificate: { id: cert.id },
    actor,
    renewalState: storeChange(withRevoked(version, reason, ctx.clock.now())),
    events: () => [
      {
        kind: 'version.revoked',
        data: {
          version_id: version.id,
          serial: version.serial,
          reason,
          issuer: cert.issuer,
          ...(note ? { note } : {}),
        },
      },
    ],
  });
  return {
    version,
    result: { revoked: { serial: version.serial, reason, issuer: cert.issuer }, ...(note ? { note } : {}) },
  };
}
