/**
 * Verifies a chain as a server sent it: builds a path from the leaf through the sent certificates (in any order)
 * to a trusted root, by issuer name and signature, then checks every certificate's dates. Like chainProblem in
 * src/pki/inspect.ts, but with parsed, indexed roots so thousands of probes do not re-parse the system store.
 */
import { X509Certificate } from 'node:crypto';
import { rootCertificates as tlsRoots } from 'node:tls';

export interface TrustStore {
  bySubject: Map<string, X509Certificate[]>;
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

export type ChainVerdict =
  | { verified: true }
  | {
      verified: false;
      /** 'untrusted': no path to a trusted root; 'expired': path found but a certificate is out of its dates. */
      kind: 'untrusted' | 'expired';
      problem: string;
      /** The sent chain lacks the certificate for this issuer (usually a missing intermediate). */
      missingIssuer?: string;
    };

function signedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

type PathResult = { path: X509Certificate[] } | Extract<ChainVerdict, { verified: false }>;

/**
 * Path building depends only on the certificates and the store, and many endpoints serve the same chain:
 * remember it per store (bounded), keyed by the DER of the chain as sent. Dates are checked on every call.
 */
const pathCache = new WeakMap<TrustStore, Map<string, PathResult>>();

/** `chainKey` identifies the sent chain (e.g. its fingerprints joined) when the caller already has it. */
export function verifySentChain(
  sent: X509Certificate[],
  store: TrustStore,
  now: Date,
  chainKey?: string,
): ChainVerdict {
  let cache = pathCache.get(store);
  if (!cache) pathCache.set(store, (cache = new Map()));
  const key = chainKey ?? sent.map((c) => c.fingerprint256).join('|');
  let built = cache.get(key);
  if (!built) {
    built = buildPath(sent, store);
    if (cache.size >= 5000) cache.clear();
    cache.set(key, built);
  }
  if (!('path' in built)) return built;
  for (const c of built.path) {
    if (now < new Date(c.validFrom))
      return {
        verified: false,
        kind: 'expired',
        problem: `certificate "${oneLine(c.subject)}" is not valid before ${new Date(c.validFrom).toISOString()}`,
      };
    if (now > new Date(c.validTo))
      return {
        verified: false,
        kind: 'expired',
        problem: `certificate "${oneLine(c.subject)}" expired at ${new Date(c.validTo).toISOString()}`,
      };
  }
  return { verified: true };
}

function buildPath(sent: X509Certificate[], store: TrustStore): PathResult {
  if (sent.length === 0)
    return { verified: false, kind: 'untrusted', problem: 'the server sent no certificate' };
  const path: X509Certificate[] = [sent[0]];
  const unused = sent.slice(1);
  let trusted = false;
  for (let cur = sent[0]; path.length <= 10;) {
    if (store.raws.has(cur.raw.toString('base64'))) {
      trusted = true;
      break;
    }
    const root = (store.bySubject.get(cur.issuer) ?? []).find((r) => signedBy(cur, r));
    if (root) {
      path.push(root);
      trusted = true;
      break;
    }
    const i = unused.findIndex((c) => signedBy(cur, c));
    if (i < 0) {
      if (signedBy(cur, cur))
        return {
          verified: false,
          kind: 'untrusted',
          problem: `the chain ends at the self-signed "${oneLine(cur.subject)}", which is not a trusted root`,
        };
      // Past the leaf, a missing issuer is usually a root the client does not trust (a private CA).
      if (path.length > 1 || cur.ca)
        return {
          verified: false,
          kind: 'untrusted',
          problem: `the chain ends at "${oneLine(cur.subject)}", issued by "${oneLine(cur.issuer)}", which is not a trusted root`,
        };
      return {
        verified: false,
        kind: 'untrusted',
        problem: `the server did not send the certificate of issuer "${oneLine(cur.issuer)}" and it is not a trusted root (missing intermediate)`,
        missingIssuer: oneLine(cur.issuer),
      };
    }
    cur = unused.splice(i, 1)[0];
    path.push(cur);
  }
  if (!trusted)
    return { verified: false, kind: 'untrusted', problem: 'the chain is too long (over 10 certificates)' };
  return { path };
}

/** Node prints distinguished names one attribute per line; messages want one line. */
export function oneLine(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}
