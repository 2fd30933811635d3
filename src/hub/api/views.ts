import type { Certificate } from '../../core/types.ts';
import type { VersionSummary } from '../../store/store.ts';

/** API shapes. Nothing secret is ever part of a view: versions carry the public chain only. */
export function versionView(v: VersionSummary) {
  return {
    id: v.id,
    serial: v.serial,
    fingerprint: v.fingerprint,
    notBefore: v.notBefore,
    notAfter: v.notAfter,
    createdAt: v.createdAt,
  };
}

export function certificateView(c: Certificate, current?: VersionSummary) {
  return { ...c, current: current ? versionView(current) : null };
}
