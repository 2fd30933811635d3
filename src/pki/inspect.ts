import { X509Certificate, createHash } from 'node:crypto';
import { CertfleetError } from '../core/errors.ts';
import { certificateParts } from './cert-der.ts';
import { readCertificate, type CertReading } from './cert-read.ts';
import { ecPublicKeyDerOf, parsePrivateKey } from './private-key.ts';
import { setBounded } from '../core/bounded-map.ts';

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

// The same PEM is parsed again and again (plan input, issuance check, deploy validation, chain judgement); an
// X509Certificate is immutable, so the last ones parsed are kept by their text.
const parsed = new Map<string, X509Certificate>();
const PARSED_KEEP = 2048;

export function parseCertificate(pem: string | Buffer): X509Certificate {
  try {
    if (typeof pem !== 'string') return new X509Certificate(pem);
    let x = parsed.get(pem);
    if (!x) {
      x = new X509Certificate(pem);
      setBounded(parsed, PARSED_KEEP, pem, x);
    }
    return x;
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

const ONE_PEM_CERT_RE =
  /^\s*-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----\s*$/;
const readings = new Map<string, CertReading | null>();

/**
 * The DER reading (src/pki/cert-read.ts) of a PEM holding exactly one certificate, kept by its text like the
 * parsed ones; undefined for anything else (several certificates, text around it, an unusual certificate): the
 * caller then parses it with OpenSSL.
 */
export function certificateReading(pem: string): CertReading | undefined {
  let r = readings.get(pem);
  if (r === undefined) {
    const body = ONE_PEM_CERT_RE.exec(pem)?.[1].replace(/\r?\n/g, '');
    r =
      body !== undefined && body.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(body)
        ? (readCertificate(ownBytes(Buffer.from(body, 'base64'))) ?? null)
        : null;
    setBounded(readings, PARSED_KEEP, pem, r);
  }
  return r ?? undefined;
}

/** A copy in a buffer of its own: a small Buffer from a string is a slice of an 8 KB pool, which a kept one pins. */
const ownBytes = (b: Buffer): Uint8Array => new Uint8Array(b);

/** What the hub and agents record of a certificate: read from the DER when it is the usual kind, else by OpenSSL. */
export function inspectCertificate(pem: string | X509Certificate): CertInfo {
  const r = typeof pem === 'string' ? certificateReading(pem) : undefined;
  if (r)
    return {
      serial: r.serial,
      fingerprint: r.fingerprint,
      subject: r.subject,
      issuer: r.issuer,
      sans: [...r.sans],
      notBefore: new Date(r.notBefore),
      notAfter: new Date(r.notAfter),
      isCA: r.ca,
    };
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

/**
 * True when the private key belongs to the certificate: their public keys are equal (what OpenSSL's
 * X509_check_private_key compares). For the EC keys certfleet writes, the public key the PKCS#8 embeds is compared
 * with the certificate's SubjectPublicKeyInfo bytes, without building either key (~0.2 ms saved per check); when
 * the bytes differ, or for any other key, OpenSSL decides.
 */
export function certMatchesKey(certPem: string, keyPem: string): boolean {
  try {
    const embedded = ecPublicKeyDerOf(keyPem);
    const spki = certificateReading(certPem)?.spki;
    if (embedded && spki && embedded.equals(spki)) return true;
    const cert = parseCertificate(certPem);
    if (embedded && embedded.equals(spkiOf(cert))) return true;
    return cert.checkPrivateKey(parsePrivateKey(keyPem));
  } catch {
    return false;
  }
}

function spkiOf(cert: X509Certificate): Uint8Array {
  try {
    return certificateParts(cert.raw).spki;
  } catch {
    return new Uint8Array(0); // not what the walk expects: OpenSSL compares
  }
}
