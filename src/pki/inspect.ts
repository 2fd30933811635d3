import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { CertfleetError } from '../core/errors.ts';

export interface CertInfo {
  serial: string; // upper-case hex, as openssl prints it
  fingerprint: string; // SHA-256 of DER, lower-case hex without colons
  subject: string;
  issuer: string;
  sans: string[]; // DNS names and IP addresses
  notBefore: Date;
  notAfter: Date;
  isCA: boolean;
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Splits concatenated PEM certificates, each returned with a trailing newline. */
export function splitPemCertificates(pem: string): string[] {
  return (pem.match(PEM_CERT_RE) ?? []).map((p) => `${p}\n`);
}

export function parseCertificate(pem: string | Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new CertfleetError(
      'BAD_REQUEST',
      'not a valid X.509 certificate',
      'pass a PEM or DER certificate',
      { cause: e },
    );
  }
}

export function fingerprintOf(cert: X509Certificate | string): string {
  const x = typeof cert === 'string' ? parseCertificate(cert) : cert;
  return createHash('sha256').update(x.raw).digest('hex');
}

/** Parses "DNS:a, IP Address:1.2.3.4" as node prints subjectAltName. */
export function sansOf(x: X509Certificate): string[] {
  if (!x.subjectAltName) return [];
  return x.subjectAltName
    .split(/,\s*/)
    .map((entry) => entry.replace(/^(DNS|IP Address):/, ''))
    .filter(Boolean);
}

export function inspectCertificate(pem: string | X509Certificate): CertInfo {
  const x = typeof pem === 'string' ? parseCertificate(pem) : pem;
  return {
    serial: x.serialNumber.toUpperCase(),
    fingerprint: fingerprintOf(x),
    subject: x.subject,
    issuer: x.issuer,
    sans: sansOf(x),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    isCA: x.ca,
  };
}

/** True when the private key belongs to the certificate. */
export function certMatchesKey(certPem: string, keyPem: string): boolean {
  try {
    return parseCertificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/**
 * Verifies leaf → intermediates → one of the trusted roots by signature and issuer name, and validity at `at`.
 * Returns a problem in words, or undefined when the chain is good.
 */
export function chainProblem(
  leafPem: string,
  chainPems: string[],
  rootPems: string[],
  at = new Date(),
): string | undefined {
  const chain = [leafPem, ...chainPems].map(parseCertificate);
  const roots = rootPems.map(parseCertificate);
  for (const c of chain) {
    if (at < new Date(c.validFrom)) return `certificate "${c.subject}" is not valid before ${c.validFrom}`;
    if (at > new Date(c.validTo)) return `certificate "${c.subject}" expired at ${c.validTo}`;
  }
  for (let i = 0; i < chain.length; i++) {
    const child = chain[i];
    const parent = chain[i + 1];
    if (parent) {
      if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
        return `certificate "${child.subject}" is not signed by the next one in the chain ("${parent.subject}")`;
      }
      continue;
    }
    const root = roots.find((r) => child.checkIssued(r) && child.verify(r.publicKey));
    if (root) return undefined;
    if (roots.some((r) => r.raw.equals(child.raw))) return undefined;
    return `chain ends at "${child.issuer}", which is not a trusted root`;
  }
  return 'empty chain';
}
