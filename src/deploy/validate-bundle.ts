import { isIP } from 'node:net';
import type { Bundle } from '../core/types.ts';
import { certMatchesKey, inspectCertificate, parseCertificate, type CertInfo } from '../pki/inspect.ts';
import { certFactsOfPem } from '../pki/cert-facts.ts';
import { judgeChain, type ChainFailureKind } from '../pki/judge-chain.ts';
import { trustStore } from '../pki/trust-store.ts';

/**
 * Checks a bundle before anything touches disk: parseable, in date, key belongs to the leaf, the chain passes the
 * same judgement probes apply (src/pki/judge-chain.ts), and the leaf covers every name the certificate is
 * supposed to serve. Pure; dates come from `now`.
 */
export type BundleCheck =
  'parse' | 'fingerprint' | 'not_yet_valid' | 'expired' | 'key_mismatch' | 'chain' | 'sans';

export interface BundleProblem {
  check: BundleCheck;
  /** For check 'chain': the chain judgement's verdict (issuer_not_ca, weak_key, ...). */
  kind?: ChainFailureKind;
  /** Names the problem and the fix; never contains key material. */
  message: string;
}

export interface ValidateBundleOptions {
  now: Date;
  /** Names the leaf must cover (the certificate's SANs). */
  sans: string[];
  /** When given, the leaf's SHA-256 fingerprint must equal it (the version the hub announced). */
  fingerprint?: string;
  /**
   * Roots the chain must end at. Without them the chain only has to be internally consistent: each certificate
   * signed by the next, the last one's issuer taken as the trust anchor (the endpoint's clients judge that).
   */
  trustedRootPems?: string[];
}

function normalise(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

/**
 * RFC 6125 style: a certificate name "*.example.com" covers exactly one extra left-most label ("a.example.com",
 * not "example.com" nor "a.b.example.com"). A wanted wildcard is covered only by the same wildcard. IPs match exactly.
 */
export function nameCovered(wanted: string, certNames: string[]): boolean {
  const w = normalise(wanted);
  const names = certNames.map(normalise);
  if (names.includes(w)) return true;
  if (isIP(w) || w.startsWith('*.')) return false;
  const dot = w.indexOf('.');
  if (dot <= 0) return false;
  return names.includes(`*${w.slice(dot)}`);
}

export function validateBundle(bundle: Bundle, opts: ValidateBundleOptions): BundleProblem | undefined {
  let leaf: CertInfo;
  try {
    leaf = inspectCertificate(bundle.certPem);
    bundle.chainPems.forEach((p) => parseCertificate(p));
  } catch {
    return { check: 'parse', message: 'the bundle holds a certificate that cannot be parsed' };
  }
  if (opts.fingerprint && leaf.fingerprint !== opts.fingerprint.toLowerCase().replace(/:/g, '')) {
    return {
      check: 'fingerprint',
      message: `the bundle's certificate has fingerprint ${leaf.fingerprint}, not the announced ${opts.fingerprint}`,
    };
  }
  const now = opts.now;
  if (now < leaf.notBefore) {
    return {
      check: 'not_yet_valid',
      message: `the certificate is not valid before ${leaf.notBefore.toISOString()} (now ${now.toISOString()})`,
    };
  }
  if (now >= leaf.notAfter) {
    return { check: 'expired', message: `the certificate expired at ${leaf.notAfter.toISOString()}` };
  }
  if (!certMatchesKey(bundle.certPem, bundle.keyPem)) {
    return { check: 'key_mismatch', message: 'the private key does not belong to the certificate' };
  }
  const chain = chainCheck(bundle, opts);
  if (chain) return { check: 'chain', kind: chain.kind, message: `${chain.message}. Fix: ${chain.hint}` };
  const missing = opts.sans.filter((n) => !nameCovered(n, leaf.sans));
  if (missing.length) {
    return {
      check: 'sans',
      message: `the certificate does not cover ${missing.join(', ')} (it covers ${leaf.sans.join(', ') || 'no names'})`,
    };
  }
  return undefined;
}

/**
 * With configured roots the chain must reach one of them. Without, the last chain certificate (or the leaf when
 * there is no chain) stands in as the trust anchor: everything below it is judged, and the endpoint's clients
 * judge the rest.
 */
function chainCheck(bundle: Bundle, opts: ValidateBundleOptions) {
  const sent = [bundle.certPem, ...bundle.chainPems].map(certFactsOfPem);
  const anchors = opts.trustedRootPems?.length
    ? opts.trustedRootPems
    : [bundle.chainPems[bundle.chainPems.length - 1] ?? bundle.certPem];
  return judgeChain(sent, { store: trustStore(anchors, false), now: opts.now }).failures[0];
}
