import type { Certificate } from '../core/types.ts';
import type { CertInfo } from '../pki/inspect.ts';
import type { Sealer } from '../store/sealing.ts';
import type { NewVersion } from '../store/store.ts';
import { versionKeyContext } from '../store/meta-catalogue.ts';

/** A version as the store takes it: the private key sealed to its certificate and leaf before it is stored. */
export function newVersionRecord(
  sealer: Sealer,
  cert: Pick<Certificate, 'id' | 'issuer'>,
  bundle: { certPem: string; chainPems: string[]; keyPem: string },
  info: CertInfo,
): NewVersion {
  return {
    serial: info.serial,
    fingerprint: info.fingerprint,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
    certPem: bundle.certPem,
    chainPem: bundle.chainPems.join(''),
    sealedKey: sealer.seal(bundle.keyPem, versionKeyContext(cert.id, info.fingerprint)),
    issuer: cert.issuer,
  };
}
