import type { ProbeTarget } from '../core/types.ts';

export const PROBE_ERROR_KINDS = [
  'refused',
  'timeout',
  'dns',
  'handshake',
  'starttls',
  'hostname_mismatch',
  'untrusted',
  'expired',
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
  error?: ProbeError;
}

/** "host:port" with IPv6 literals bracketed, for messages. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
