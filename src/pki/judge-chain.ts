/**
 * The one judgement of a certificate chain as a TLS server sends it, used by the hub's probes, `certfleet check`
 * and the agent's bundle validation. "Valid" means what browsers and OpenSSL mean: a path from the leaf through
 * the sent certificates (in any order) to a trusted root, by issuer name and signature; every issuer a CA
 * (basicConstraints CA:TRUE, keyCertSign when keyUsage is present, pathLen respected); serverAuth in the leaf's
 * EKU when it has one; no MD5/SHA-1 signatures, RSA ≥ 2048 bits, only the curves P-256/P-384/P-521; a
 * subjectAltName (browsers ignore the CN); the name covered; every certificate in its dates.
 *
 * Everything but the name and the dates depends on the certificates and the trust store alone, and fleets serve
 * the same few chains from many endpoints: that part is kept per store and chain (bounded).
 */
import { verify, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { certFacts, type CertFacts } from './cert-facts.ts';
import type { TrustStore } from './trust-store.ts';

export const CHAIN_FAILURE_KINDS = [
  'untrusted',
  'missing_intermediate',
  'issuer_not_ca',
  'bad_key_usage',
  'path_len_exceeded',
  'wrong_eku',
  'weak_signature',
  'weak_key',
  'unsupported_curve',
  'no_san',
  'hostname_mismatch',
  'not_yet_valid',
  'expired',
] as const;
export type ChainFailureKind = (typeof CHAIN_FAILURE_KINDS)[number];

export interface ChainFailure {
  kind: ChainFailureKind;
  /** What is wrong, naming the certificate. */
  message: string;
  /** The fix. */
  hint: string;
}

export const CHAIN_WARNING_KINDS = ['out_of_order', 'unrelated_certificate', 'root_sent'] as const;
export type ChainWarningKind = (typeof CHAIN_WARNING_KINDS)[number];

/** Not a failure: clients cope, but the server should be fixed. The message says how. */
export interface ChainWarning {
  kind: ChainWarningKind;
  message: string;
}

export interface ChainJudgement {
  ok: boolean;
  /** Every problem found, most fundamental first: the first one is the verdict. */
  failures: ChainFailure[];
  warnings: ChainWarning[];
  /** Leaf → issuers → trust anchor; when no path to a root was found, as far as it could be linked. */
  path: CertFacts[];
  /** Whether the leaf covers `name`, when one was given. */
  nameMatches?: boolean;
}

export interface JudgeOptions {
  store: TrustStore;
  now: Date;
  /** The name a client would connect to (SNI or host); not checked when absent. */
  name?: string;
  /** Identifies the sent chain (e.g. its fingerprints joined) when the caller already has it. */
  chainKey?: string;
}

const ALLOWED_CURVES: Record<string, string> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
};
const MIN_RSA_BITS = 2048;
const MAX_PATH = 10;

const TRUST_HINT =
  "if this is a private CA, trust its root (certfleet check --ca-file, the hub's probes.trustBundleFile); " +
  'otherwise serve a certificate from a publicly trusted CA with its full chain';

interface StaticJudgement {
  path: CertFacts[];
  failures: ChainFailure[];
  warnings: ChainWarning[];
}

const cache = new WeakMap<TrustStore, Map<string, StaticJudgement>>();

/** `sent`: node's parses, or facts already read (certFactsOfPem, which parses only when it must). */
export function judgeChain(sent: Array<X509Certificate | CertFacts>, opts: JudgeOptions): ChainJudgement {
  if (sent.length === 0)
    return {
      ok: false,
      failures: [
        {
          kind: 'untrusted',
          message: 'no certificate was sent',
          hint: 'configure a certificate and key on the server',
        },
      ],
      warnings: [],
      path: [],
    };
  let perStore = cache.get(opts.store);
  if (!perStore) cache.set(opts.store, (perStore = new Map()));
  const facts = sent.map((c) => (c instanceof X509Certificate ? certFacts(c) : c));
  const key = opts.chainKey ?? facts.map((c) => c.fingerprint).join('|');
  let fixed = perStore.get(key);
  if (!fixed) {
    fixed = judgeStatic(facts, opts.store);
    if (perStore.size >= 5000) perStore.clear();
    perStore.set(key, fixed);
  }
  const failures = [...fixed.failures];
  const leaf = fixed.path[0];
  let nameMatches: boolean | undefined;
  if (opts.name !== undefined) {
    nameMatches = coversName(leaf.x509, opts.name);
    if (!nameMatches) failures.push(hostnameMismatch(leaf, opts.name));
  }
  failures.push(...dateFailures(fixed.path, opts.now));
  return {
    ok: failures.length === 0,
    failures,
    warnings: fixed.warnings,
    path: fixed.path,
    ...(nameMatches !== undefined ? { nameMatches } : {}),
  };
}

/**
 * The signature algorithms checked on the DER reading, each with its digest and the key type it needs; what
 * X509_verify checks: the algorithm the TBS names is the outer one, the issuer's key is of the algorithm's type,
 * and the signature verifies over the TBS bytes. Any other algorithm goes to X509Certificate.verify.
 */
const CHECKED_SIGNATURES: Record<string, [digest: string | null, keyType: string]> = {
  '1.2.840.10045.4.3.2': ['sha256', 'ec'],
  '1.2.840.10045.4.3.3': ['sha384', 'ec'],
  '1.2.840.10045.4.3.4': ['sha512', 'ec'],
  '1.2.840.113549.1.1.11': ['sha256', 'rsa'],
  '1.2.840.113549.1.1.12': ['sha384', 'rsa'],
  '1.2.840.113549.1.1.13': ['sha512', 'rsa'],
  '1.3.101.112': [null, 'ed25519'],
};

function signedBy(child: CertFacts, parent: CertFacts | X509Certificate): boolean {
  const p = parent instanceof X509Certificate ? certFacts(parent) : parent;
  // By name and signature only: X509Certificate.checkIssued would also refuse an issuer whose keyUsage lacks
  // keyCertSign, and that must be reported as what it is, not as a missing issuer.
  if (child.issuerName !== p.subjectName) return false;
  try {
    const r = child.reading;
    const how = r?.signatureAlgorithmMatches ? CHECKED_SIGNATURES[r.signatureOid] : undefined;
    if (!r || !how) return child.x509.verify(p.x509.publicKey);
    const key: KeyObject = p.x509.publicKey; // an issuer: parsed once, its facts kept
    return key.asymmetricKeyType === how[1] && verify(how[0], r.tbs, key, r.signature);
  } catch {
    return false;
  }
}

function isAnchor(c: CertFacts, store: TrustStore): boolean {
  return store.raws.has(Buffer.from(c.raw.buffer, c.raw.byteOffset, c.raw.byteLength).toString('base64'));
}

function judgeStatic(sent: CertFacts[], store: TrustStore): StaticJudgement {
  const failures: ChainFailure[] = [];
  const path: CertFacts[] = [sent[0]];
  const unused = new Set(sent.keys());
  unused.delete(0);
  const usedOrder: number[] = [];
  let anchored = false;
  let anchorSent = false;
  for (let cur = sent[0]; ;) {
    if (isAnchor(cur, store)) {
      anchored = true;
      anchorSent = path.length > 1;
      break;
    }
    const root = (store.bySubject.get(cur.issuerName) ?? []).find((r) => signedBy(cur, r));
    if (root) {
      path.push(certFacts(root));
      anchored = true;
      break;
    }
    const next = [...unused].find((i) => sent[i].fingerprint !== cur.fingerprint && signedBy(cur, sent[i]));
    if (next === undefined) {
      failures.push(noPath(cur, path.length));
      break;
    }
    if (path.length >= MAX_PATH) {
      failures.push({
        kind: 'untrusted',
        message: `the chain is longer than ${MAX_PATH} certificates without reaching a trusted root`,
        hint: 'serve the leaf and its intermediates only',
      });
      break;
    }
    unused.delete(next);
    usedOrder.push(next);
    path.push(sent[next]);
    cur = sent[next];
  }
  failures.push(...structureFailures(path, anchored));
  const warnings: ChainWarning[] = [];
  if (anchored) {
    // TLS 1.2 (RFC 5246 §7.4.2) wants the leaf, then each certificate certifying the one before it.
    if (usedOrder.some((i, k) => i !== k + 1))
      warnings.push({
        kind: 'out_of_order',
        message:
          `the chain is sent out of order (${sent.map((c) => `"${c.subject}"`).join(', ')}); ` +
          `send the leaf, then each issuer in turn: ${path
            .slice(0, anchorSent ? path.length : -1)
            .map((c) => `"${c.subject}"`)
            .join(', ')}`,
      });
    const anchor = path[path.length - 1];
    const rootSent = (c: CertFacts) =>
      `the root "${c.subject}" is sent in the chain; clients use their own copy, so remove it from the served chain`;
    if (anchorSent) warnings.push({ kind: 'root_sent', message: rootSent(anchor) });
    const seen = new Set(path.map((c) => c.fingerprint));
    for (const i of [...unused].sort((a, b) => a - b)) {
      const c = sent[i];
      if (seen.has(c.fingerprint) && c.fingerprint !== anchor.fingerprint) continue; // sent twice
      // The chain's own root: the very anchor, or another copy of it (same name, self-signed).
      const ownRoot =
        c.fingerprint === anchor.fingerprint ||
        (c.selfIssued && c.subject === anchor.subject && signedBy(c, c));
      if (ownRoot && anchorSent) continue;
      warnings.push(
        ownRoot
          ? { kind: 'root_sent', message: rootSent(c) }
          : {
              kind: 'unrelated_certificate',
              message: `the certificate "${c.subject}" is sent but is not part of the path to the root; remove it from the served chain`,
            },
      );
    }
  }
  return { path, failures, warnings };
}

function noPath(cur: CertFacts, pathLength: number): ChainFailure {
  if (cur.selfIssued && signedBy(cur, cur))
    return {
      kind: 'untrusted',
      message: `the chain ends at the self-signed "${cur.subject}", which is not a trusted root`,
      hint: TRUST_HINT,
    };
  // Past the leaf (or when the leaf is itself a CA), a missing issuer is usually a root the client does not trust.
  if (pathLength > 1 || cur.ca)
    return {
      kind: 'untrusted',
      message: `the chain ends at "${cur.subject}", issued by "${cur.issuer}", which is not a trusted root`,
      hint: TRUST_HINT,
    };
  return {
    kind: 'missing_intermediate',
    message: `the certificate of its issuer "${cur.issuer}" was not sent and is not a trusted root (missing intermediate)`,
    hint:
      'serve the full chain, leaf first then the intermediates (e.g. fullchain.pem as nginx ssl_certificate); ' +
      `if "${cur.issuer}" is a private root, trust it instead`,
  };
}

function structureFailures(path: CertFacts[], anchored: boolean): ChainFailure[] {
  const out: ChainFailure[] = [];
  const leaf = path[0];
  for (let i = 1; i < path.length; i++) {
    const c = path[i];
    const child = path[i - 1];
    if (!c.ca)
      out.push({
        kind: 'issuer_not_ca',
        message: `"${c.subject}" signed "${child.subject}" but is not a CA certificate (basicConstraints CA:TRUE is missing)`,
        hint: 'serve the intermediates your CA gave you (a leaf certificate cannot issue others), or reissue from a real CA',
      });
    else if (c.keyUsage && !c.keyUsage.includes('keyCertSign'))
      out.push({
        kind: 'bad_key_usage',
        message: `the CA "${c.subject}" has a keyUsage without keyCertSign (${c.keyUsage.join(', ')}), so it may not sign certificates`,
        hint: 'reissue the CA certificate with keyUsage keyCertSign, then reissue what it signed',
      });
    if (c.pathLen !== undefined) {
      const below = path.slice(1, i).filter((x) => !x.selfIssued).length;
      if (below > c.pathLen)
        out.push({
          kind: 'path_len_exceeded',
          message: `the CA "${c.subject}" allows ${c.pathLen} intermediate CA(s) below it (pathLen ${c.pathLen}) but the chain has ${below}`,
          hint: `issue the leaf directly from a CA that "${c.subject}" allows, or reissue the CAs with a larger pathLen`,
        });
    }
    if (c.eku && !c.eku.includes('serverAuth') && !c.eku.includes('anyExtendedKeyUsage'))
      out.push(wrongEku(c, 'the CA'));
  }
  if (leaf.eku && !leaf.eku.includes('serverAuth')) out.push(wrongEku(leaf, 'the certificate'));
  // The trust anchor's own signature is never checked by clients, so its digest does not matter.
  const signed = anchored && path[path.length - 1].selfIssued ? path.slice(0, -1) : path;
  for (const c of signed) {
    if (c.signature.weak)
      out.push({
        kind: 'weak_signature',
        message: `"${c.subject}" is signed with ${c.signature.algorithm}, which browsers and OpenSSL refuse`,
        hint: 'reissue it with a SHA-256 (or stronger) signature',
      });
  }
  for (const c of path) {
    const k = c.key;
    const rsa = k.type === 'rsa' || k.type === 'rsa-pss';
    if (k.type === 'dsa' || (rsa && (k.bits ?? 0) < MIN_RSA_BITS))
      out.push({
        kind: 'weak_key',
        message: `"${c.subject}" has a ${k.bits ?? '?'}-bit ${k.type.toUpperCase()} key; browsers require RSA of at least ${MIN_RSA_BITS} bits or ECDSA`,
        hint: 'reissue it with an RSA 2048+ or ECDSA P-256/P-384 key',
      });
    else if (!rsa && !(k.type === 'ec' && ALLOWED_CURVES[k.curve ?? '']))
      out.push({
        kind: 'unsupported_curve',
        message: `"${c.subject}" has a ${k.curve ?? k.type} key; browsers accept only RSA and ECDSA on P-256, P-384 and P-521`,
        hint: 'reissue it with an ECDSA P-256/P-384 or RSA 2048+ key',
      });
  }
  if (!leaf.hasSan)
    out.push({
      kind: 'no_san',
      message: `the certificate "${leaf.subject}" has no subjectAltName; browsers ignore the CN and accept no name for it`,
      hint: 'reissue it with the host names as subjectAltName (DNS) entries',
    });
  return out;
}

function wrongEku(c: CertFacts, what: string): ChainFailure {
  return {
    kind: 'wrong_eku',
    message: `${what} "${c.subject}" is not for TLS servers: its extended key usage is ${c.eku!.join(', ')}, without serverAuth`,
    hint: 'reissue it with extendedKeyUsage serverAuth',
  };
}

/** RFC 6125 as browsers apply it: SANs only (never the CN), one-label wildcards, IPs against IP SANs. */
export function coversName(cert: X509Certificate, name: string): boolean {
  const n = name.replace(/\.$/, '');
  if (isIP(n)) return cert.checkIP(n) !== undefined;
  return cert.checkHost(n, { subject: 'never', wildcards: true, partialWildcards: false }) !== undefined;
}

function hostnameMismatch(leaf: CertFacts, name: string): ChainFailure {
  const sans = (leaf.x509.subjectAltName ?? '')
    .split(/,\s*/)
    .map((s) => s.replace(/^(DNS|IP Address):/, ''))
    .filter(Boolean);
  return {
    kind: 'hostname_mismatch',
    message: `the certificate "${leaf.subject}" does not cover "${name}"; it covers ${
      sans.length ? sans.join(', ') : 'no names (no subjectAltName)'
    }`,
    hint:
      `deploy a certificate whose SANs include "${name}", or make the server pick the right certificate for ` +
      'this name (SNI / server_name)',
  };
}

const DAY = 86_400_000;

function dateFailures(path: CertFacts[], now: Date): ChainFailure[] {
  const out: ChainFailure[] = [];
  path.forEach((c, i) => {
    const what = i === 0 ? 'the certificate' : 'the chain certificate';
    if (now < c.notBefore)
      out.push({
        kind: 'not_yet_valid',
        message: `${what} "${c.subject}" is not valid before ${c.notBefore.toISOString()} (in ${Math.ceil((c.notBefore.getTime() - now.getTime()) / DAY)} days)`,
        hint: "check this machine's and the server's clocks, or wait until the certificate becomes valid",
      });
    else if (now > c.notAfter)
      out.push({
        kind: 'expired',
        message: `${what} "${c.subject}" expired at ${c.notAfter.toISOString()} (${Math.floor((now.getTime() - c.notAfter.getTime()) / DAY)} days ago)`,
        hint:
          i === 0
            ? 'renew it and deploy the new version; if a renewed file is already on disk, the server was not reloaded'
            : 'serve the current intermediate from your CA (fullchain of a recent issuance)',
      });
  });
  return out;
}
