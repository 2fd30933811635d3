import { CertfleetError, errorMessage, isCertfleetError } from '../core/errors.ts';
import type { Certificate, CertificateVersion } from '../core/types.ts';
import type { CertificateSpec } from '../core/config-schema.ts';
import { certMatchesKey, inspectCertificate, type CertInfo } from '../pki/inspect.ts';
import type { IssuedVersion } from '../issuers/issuer.ts';
import type { Actor } from '../store/store.ts';
import type { HubContext } from './hub-context.ts';

/** Context string binding a sealed version key to its certificate and leaf. */
export const versionKeyContext = (certificateId: string, fingerprint: string) =>
  `version-key:${certificateId}:${fingerprint}`;

/**
 * Creating certificates and issuing their versions. Renewals reach `issue` only through the RenewalService's
 * coalescer (one issuance per certificate at a time, within the rate-limit budget).
 */
export class CertificateService {
  constructor(private readonly ctx: HubContext) {}

  assertIssuerExists(issuer: string): void {
    if (!this.ctx.issuers.has(issuer)) {
      throw new CertfleetError(
        'VALIDATION_FAILED',
        `issuer "${issuer}" is not configured`,
        `use one of: ${[...this.ctx.issuers.keys()].join(', ')}`,
      );
    }
  }

  /**
   * Creates a certificate with its first version. The version is obtained before anything is stored, so a name the
   * CA rejects (or an unreachable CA) leaves no half-made certificate behind, only the `version.issue_failed`
   * event. With `issue: false` the certificate is stored without a version and the planner issues it.
   */
  async create(spec: CertificateSpec, actor: Actor, opts: { issue?: boolean } = {}): Promise<Certificate> {
    const { store } = this.ctx;
    this.assertIssuerExists(spec.issuer);
    if (opts.issue === false) return store.createCertificate(spec, actor);
    if (await store.getCertificate(spec.name)) {
      // The same refusal the store gives, before spending an order at the CA.
      return store.createCertificate(spec, actor);
    }
    const started = Date.now();
    const obtained = await this.obtain(spec, undefined, actor, 'created');
    const cert = await store.createCertificate(spec, actor);
    await this.storeVersion(cert, obtained.issued, obtained.info, actor);
    this.logIssued(cert, obtained.info, 'created', started);
    return cert;
  }

  /** Issues and stores a new version now. Callers coalesce concurrent triggers (RenewalService does). */
  async issue(cert: Certificate, actor: Actor, reason: string): Promise<CertificateVersion> {
    this.assertIssuerExists(cert.issuer);
    const started = Date.now();
    const previous = await this.ctx.store.currentVersion(cert.id);
    const { issued, info } = await this.obtain(cert, previous, actor, reason);
    const version = await this.storeVersion(cert, issued, info, actor);
    this.logIssued(cert, info, reason, started);
    return version;
  }

  /**
   * Asks the certificate's issuer for a new version and checks it (key matches, names covered); stores nothing
   * but the `version.issue_failed` event when the issuer fails.
   */
  private async obtain(
    cert: Pick<Certificate, 'name' | 'sans' | 'keyType' | 'lifetimeDays' | 'issuer'>,
    previous: CertificateVersion | undefined,
    actor: Actor,
    reason: string,
  ): Promise<{ issued: IssuedVersion; info: CertInfo }> {
    const issuer = this.ctx.issuers.get(cert.issuer)!;
    let issued: IssuedVersion;
    try {
      issued = await issuer.issue({
        certificateName: cert.name,
        sans: cert.sans,
        keyType: cert.keyType,
        lifetimeDays: cert.lifetimeDays,
        ...(previous ? { replacesCertPem: previous.certPem } : {}),
      });
    } catch (e) {
      await this.ctx.store.appendEvent({
        actor,
        kind: 'version.issue_failed',
        subject: `certificate:${cert.name}`,
        data: {
          reason,
          issuer: cert.issuer,
          error: errorMessage(e),
          ...(isCertfleetError(e) ? { code: e.code } : {}),
          // The problem type, exit code, DNS name...: what `certfleet doctor` classifies (never secrets).
          ...(isCertfleetError(e) && e.details ? { details: e.details } : {}),
        },
      });
      if (isCertfleetError(e)) throw e;
      throw new CertfleetError(
        'ISSUANCE_FAILED',
        `issuing "${cert.name}" failed: ${errorMessage(e)}`,
        'see `certfleet events`',
        {
          cause: e,
        },
      );
    }
    const info = inspectCertificate(issued.certPem);
    if (!certMatchesKey(issued.certPem, issued.keyPem)) {
      throw new CertfleetError(
        'ISSUANCE_FAILED',
        `issuer "${cert.issuer}" returned a certificate that does not match its key`,
        '',
      );
    }
    const missing = cert.sans.filter((n) => !info.sans.includes(n));
    if (missing.length) {
      throw new CertfleetError(
        'ISSUANCE_FAILED',
        `issued certificate lacks names: ${missing.join(', ')}`,
        'check the issuer',
      );
    }
    return { issued, info };
  }

  private logIssued(cert: Certificate, info: CertInfo, reason: string, started: number): void {
    this.ctx.logger.info(
      {
        certificate: cert.name,
        serial: info.serial,
        not_after: info.notAfter.toISOString(),
        reason,
        duration_ms: Date.now() - started,
      },
      'version issued',
    );
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
    const version = await this.storeVersion(cert, bundle, info, actor);
    return { version, added: true };
  }

  /** Seals the key and commits the version as current (one transaction, with its event). */
  private storeVersion(
    cert: Certificate,
    bundle: { certPem: string; chainPems: string[]; keyPem: string },
    info: CertInfo,
    actor: Actor,
  ): Promise<CertificateVersion> {
    return this.ctx.store.addVersion(
      cert.id,
      {
        serial: info.serial,
        fingerprint: info.fingerprint,
        notBefore: info.notBefore.toISOString(),
        notAfter: info.notAfter.toISOString(),
        certPem: bundle.certPem,
        chainPem: bundle.chainPems.join(''),
        sealedKey: this.ctx.sealer.seal(bundle.keyPem, versionKeyContext(cert.id, info.fingerprint)),
        issuer: cert.issuer,
      },
      actor,
    );
  }

  /** The private key of a version, unsealed: only for the agent bundle path, never for API responses. */
  async privateKeyOf(cert: Certificate, version: CertificateVersion): Promise<string> {
    const sealed = await this.ctx.store.sealedKeyOf(version.id);
    if (!sealed) throw new CertfleetError('NOT_FOUND', 'version key missing', 'renew the certificate');
    return this.ctx.sealer.unseal(sealed, versionKeyContext(cert.id, version.fingerprint));
  }
}
