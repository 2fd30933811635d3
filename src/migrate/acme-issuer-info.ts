import type { AccountStore } from '../issuers/acme/account-store.ts';
import type { Issuer } from '../issuers/issuer.ts';

/** What import and doctor need to know about a configured ACME issuer. */
export interface AcmeIssuerInfo {
  name: string;
  directoryUrl: string;
  caPem?: string;
  accountStore?: AccountStore;
  issuer: Issuer;
}

/**
 * The ACME issuers among the hub's issuers. AcmeIssuer keeps its options private, so this reads them
 * structurally (`directoryUrl` on the issuer or in its options): the one place that knows that shape.
 */
export function acmeIssuers(issuers: Map<string, Issuer>): AcmeIssuerInfo[] {
  const out: AcmeIssuerInfo[] = [];
  for (const [name, issuer] of issuers) {
    if (issuer.kind !== 'acme') continue;
    const i = issuer as unknown as { directoryUrl?: string; opts?: Record<string, unknown> };
    const o = (i.opts ?? {}) as { directoryUrl?: string; caPem?: string; accountStore?: AccountStore };
    const directoryUrl = i.directoryUrl ?? o.directoryUrl;
    if (!directoryUrl) continue;
    out.push({
      name,
      directoryUrl,
      ...(o.caPem ? { caPem: o.caPem } : {}),
      ...(o.accountStore ? { accountStore: o.accountStore } : {}),
      issuer,
    });
  }
  return out;
}

/** Directory URLs compare without a trailing slash and with a lower-case host. */
export function sameDirectory(a: string, b: string): boolean {
  const norm = (u: string) => {
    try {
      const x = new URL(u);
      return `${x.protocol}//${x.host.toLowerCase()}${x.pathname.replace(/\/+$/, '')}${x.search}`;
    } catch {
      return u.replace(/\/+$/, '');
    }
  };
  return norm(a) === norm(b);
}
