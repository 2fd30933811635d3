import { CertfleetError } from '../core/errors.ts';
import type { Certificate, CertificateVersion } from '../core/types.ts';
import type { CertificateSpec } from '../core/config-schema.ts';
import { certMatchesKey, inspectCertificate } from '../pki/inspect.ts';
import type { Actor } from '../store/store.ts';
import type { HubContext } from './hub-context.ts';
import { Issuance } from './renewal/issuance.ts';
import { newVersionRecord } from './version-record.ts';
import { versionKeyContext } from '../store/meta-catalogue.ts';

/**
 * Creating certificates (the first version through the Issuance: coalesced, within the rate-limit budget, one
 * transaction), importing versions obtained elsewhere, and unsealing version keys for agent bundles. New versions
 * of existing certificates come from the RenewalService.
 */
export class CertificateService {
  constructor(
    private readonly ctx: HubContext,
    private readonly issuance: Issuance = new Issuance(ctx),
  ) {}

  assertIssuerExists(issuer: string): void {
    if (!this.ctx.issuers.has(issuer)) {
      throw new CertfleetError(
        'VALIDATION_FAILED',
        `issuer "${issuer}" is not configured`,
        `use one of: ${[...this.ctx.issuers.keys()].join(', ')}`,
      );
    }
  }

  /** The issuer exists and can honour the spec: a profile needs an ACME issuer (the CA checks the name). */
  assertIssuable(spec: Pick<CertificateSpec, 'issuer' | 'profile'>): void {
    this.assertIssuerExists(spec.issuer);
    if (spec.profile !== undefined && this.ctx.issuers.get(spec.issuer)?.kind !== 'acme') {
      throw new CertfleetError(
        'VALIDATION_FAILED',
        `profile "${spec.profile}" needs an ACME issuer, and "${spec.issuer}" is the hub's internal CA`,
        'remove the profile (the internal CA issues the lifetime you set with lifetimeDays), or pick an ACME issuer',
      );
    }
  }

  /**
   * Creates a certificate with its first version, stored together: a name the CA rejects (or an unreachable CA)
   * leaves no half-made certificate behind, only the `version.issue_failed` event. Refused (RATE_LIMITED) when the
   * issuer's budget has no room. With `issue: false` the certificate is stored without a version and the planner
   * issues it.
   */
  async create(spec: CertificateSpec, actor: Actor, opts: { issue?: boolean } = {}): Promise<Certificate> {
    this.assertIssuable(spec);
    if (opts.issue === false) return this.ctx.store.createCertificate(spec, actor);
    return this.issuance.create(spec, actor);
  }

  /**
   * Stores a version obtained elsewhere (a certbot lineage) as the current one. Idempotent: a leaf already
   * stored for this certificate is returned unchanged (`added: false`). The key must match the leaf.
   */
  async importVersion(
    cert: Certificate,
    bundle: { certPem: string; chainPems: string[]; keyPem: string },
    actor: Actor,
  ): Promise<{ version: CertificateVersion; added: boolean }> {
    const { store } = this.ctx;
    const info = inspectCertificate(bundle.certPem);
    const existing = (await store.listVersions(cert.id)).find((v) => v.fingerprint === info.fingerprint);
    if (existing) return { version: existing, added: false };
    if (!certMatchesKey(bundle.certPem, bundle.keyPem)) {
      throw new CertfleetError(
        'VALIDATION_FAILED',
        `the private key given for "${cert.name}" does not belong to its certificate`,
        'import the privkey.pem of the same lineage as cert.pem',
      );
    }
    const version = await store.addVersion(
      cert.id,
      newVersionRecord(this.ctx.sealer, cert, bundle, info),
      actor,
    );
    return { version, added: true };
  }

  /** The private key of a version, unsealed: only for the agent bundle path, never for API responses. */
  async privateKeyOf(cert: Certificate, version: CertificateVersion): Promise<string> {
    const sealed = await this.ctx.store.sealedKeyOf(version.id);
    if (!sealed) throw new CertfleetError('NOT_FOUND', 'version key missing', 'renew the certificate');
    return this.ctx.sealer.unseal(sealed, versionKeyContext(cert.id, version.fingerprint));
  }
}
