/**
 * The proxies whose forwarding headers the hub believes (`certfleet hub --trusted-proxy`). Behind a TLS-terminating
 * proxy the hub sees plain HTTP from the proxy's address; for a request whose peer is one of these,
 * `X-Forwarded-Proto` gives the scheme and `X-Forwarded-For` the client (fastify's `trustProxy`, read right to left
 * up to the first address not listed). Two things need them:
 * - the dashboard: sign-in and every change compare the browser's `Origin` (`https://…`) with the hub's own origin,
 *   and its cookie is `Secure` only over HTTPS (src/hub/dashboard/session-auth.ts);
 * - the failure limiter (failure-limiter.ts) counts failed token and enrollment attempts per client address; without
 *   them every client is the proxy, and one client guessing tokens locks out everyone, agents' enrollment included.
 * Nothing grants access on an address: `/metrics`' anonymous loopback access reads the socket's peer and refuses any
 * request that carries a forwarding header (access.ts), whatever is trusted here. Agent requests are signed over
 * method, path and query only, never scheme, host or port, so they verify through any proxy that keeps the path.
 */
import { isIP } from 'node:net';
import { CertfleetError } from '../../core/errors.ts';

/** proxy-addr's names for address ranges, accepted as they are. */
const RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** Checks each entry (an IP address, a CIDR range, or loopback | linklocal | uniquelocal) and returns them. */
export function parseTrustedProxies(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of values.flatMap((v) => v.split(','))) {
    const value = raw.trim();
    if (!value) continue;
    if (!RANGE_NAMES.has(value) && !isAddressOrRange(value)) {
      throw new CertfleetError(
        'USAGE',
        `--trusted-proxy: "${value}" is not an IP address or CIDR range`,
        'give the address of the proxy in front of the hub, e.g. 127.0.0.1, 10.0.0.0/24 or ::1 (or loopback)',
      );
    }
    out.push(value);
  }
  return out;
}

function isAddressOrRange(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash < 0) return isIP(value) !== 0;
  const family = isIP(value.slice(0, slash));
  const bits = value.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}
