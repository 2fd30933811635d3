import type { ProbeTarget } from '../core/types.ts';
import { CHAIN_FAILURE_KINDS, type ChainWarning } from '../pki/judge-chain.ts';

/** How a probe can fail: before a certificate is seen (network, TLS), then as the chain judgement says. */
export const PROBE_ERROR_KINDS = [
  'refused',
  'timeout',
  'dns',
  'handshake',
  'starttls',
  /** The server speaks only TLS 1.0/1.1, which browsers and OpenSSL 3 refuse. */
  'old_tls_version',
  ...CHAIN_FAILURE_KINDS,
  'other',
] as const;
export type ProbeErrorKind = (typeof PROBE_ERROR_KINDS)[number];

export interface ProbeError {
  kind: ProbeErrorKind;
  /** Words a person can act on: what is wrong, then the fix. */
  message: string;
}

/** What one TLS handshake against one address of a probe target showed. JSON-safe (dates as ISO strings). */
export interface ProbeResult {
  /** The target as asked, plus the IP address actually connected to. */
  target: ProbeTarget & { address?: string };
  /** True only when the handshake worked and the certificate is trusted, in date, and covers the name. */
  ok: boolean;
  /** When the probe ran (ISO 8601). */
  at: string;
  /** SHA-256 of the leaf DER, lower-case hex without colons (as fingerprintOf). */
  fingerprint?: string;
  serial?: string;
  subject?: string;
  issuer?: string;
  sans?: string[];
  notBefore?: string;
  notAfter?: string;
  /** The certificates the server sent, leaf first, in PEM. */
  chainPems?: string[];
  /** True when the sent chain leads to a trusted root and every certificate in it is valid now. */
  chainVerified?: boolean;
  chainError?: string;
  /** Whether the leaf covers the SNI name (or the host when no SNI was given). */
  hostnameMatches?: boolean;
  /** As negotiated, e.g. "TLSv1.3". */
  tlsVersion?: string;
  /** Duration of the TLS handshake alone (after TCP connect and STARTTLS), in milliseconds. */
  handshakeMs?: number;
  /** Negotiated cipher suite (IANA name) and key-exchange group, e.g. "X25519". */
  cipher?: string;
  group?: string;
  /** The leaf's key, e.g. { type: 'ec', bits: 256, curve: 'prime256v1' }. */
  key?: { type: string; bits?: number; curve?: string };
  /** The leaf's signature algorithm, e.g. "ECDSA with SHA-256". */
  signatureAlgorithm?: string;
  /** The leaf's extended key usages (absent: no EKU extension, any use). */
  eku?: string[];
  /** Each certificate as sent, leaf first. */
  chain?: ChainCertSummary[];
  /** Every problem the chain judgement found, the verdict first (error holds the verdict). */
  problems?: ProbeError[];
  /** Not failures: out-of-order chain, unrelated certificates, a root sent along. */
  warnings?: ChainWarning[];
  /** When the probe failed before judging a certificate: how far it got, and the TLS library's reason. */
  failedAt?: 'dns' | 'connect' | 'starttls' | 'handshake';
  tlsError?: string;
  error?: ProbeError;
}

export interface ChainCertSummary {
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
}

export { formatHostPort } from './probe-basics.ts';
