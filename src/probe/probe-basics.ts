/**
 * What the CLI needs about probing before it probes (option defaults, how a target is written), in a module that
 * loads nothing else: `certfleet --help` must not load the prober and its X.509 stack.
 */

/** Per address: TCP connect + STARTTLS + TLS handshake. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5000;

/** `host:port`, with an IPv6 host in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
