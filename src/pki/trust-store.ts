/**
 * Trusted roots, parsed once and indexed by subject, so thousands of probes do not re-parse the system store.
 * A store is cached per combination of extra roots and system roots.
 */
import { X509Certificate } from 'node:crypto';
import { rootCertificates as tlsRoots } from 'node:tls';

export interface TrustStore {
  bySubject: Map<string, X509Certificate[]>;
  /** DER (base64) of every root: a sent certificate found here is a trust anchor itself. */
  raws: Set<string>;
}

const parsed = new Map<string, X509Certificate | null>();
function parsePem(pem: string): X509Certificate | null {
  let x = parsed.get(pem);
  if (x === undefined) {
    try {
      x = new X509Certificate(pem);
    } catch {
      x = null; // a bad PEM in the system store or a CA file must not break every probe
    }
    if (parsed.size < 10_000) parsed.set(pem, x);
  }
  return x;
}

const stores = new Map<string, TrustStore>();

/** A trust store from extra root PEMs plus, optionally, Node's bundled roots; cached per combination. */
export function trustStore(extraRootPems: string[] = [], useSystemRoots = true): TrustStore {
  const key = `${useSystemRoots ? 1 : 0}\n${extraRootPems.join('\n')}`;
  let store = stores.get(key);
  if (store) return store;
  store = { bySubject: new Map(), raws: new Set() };
  const pems = [...extraRootPems, ...(useSystemRoots ? tlsRoots : [])];
  for (const pem of pems) {
    const x = parsePem(pem);
    if (!x) continue;
    const list = store.bySubject.get(x.subject) ?? [];
    list.push(x);
    store.bySubject.set(x.subject, list);
    store.raws.add(x.raw.toString('base64'));
  }
  if (stores.size > 32) stores.clear();
  stores.set(key, store);
  return store;
}
