import type { Certificate, CertificateVersion } from '../../core/types.ts';

/** API shapes. Nothing secret is ever part of a view: versions carry the public chain only. */
export function versionView(v: CertificateVersion) {
  return {
    id: v.id,
    serial: v.serial,
    fingerprint: v.fingerprint,
    notBefore: v.notBefore,
    notAfter: v.notAfter,
    createdAt: v.createdAt,
  };
}

export function certificateView(c: Certificate, current?: CertificateVersion) {
  return { ...c, current: current ? versionView(current) : null };
}
