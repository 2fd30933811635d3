import { fingerprintOf, parseCertificate } from '../pki/inspect.ts';
import { judgeChain, type ChainFailure } from '../pki/judge-chain.ts';
import { trustStore } from '../pki/trust-store.ts';

/** What a deploy expects the endpoint to serve: the version's leaf, with the chain it came with. */
export interface ServedExpectation {
  /** SHA-256 of the leaf's DER (hex, colons allowed). */
  fingerprint: string;
  /** The bundle's chain after the leaf (intermediates, perhaps the root), as deployed. */
  chainPems: string[];
  /** Roots the served chain must reach (the deploy's `trustedRootPems`); default: see `judgeServedChain`. */
  trustedRootPems?: string[];
}

const NO_PATH = new Set(['untrusted', 'missing_intermediate']);

function selfSigned(pem: string): boolean {
  const x = parseCertificate(pem);
  try {
    return x.subject === x.issuer && x.verify(x.publicKey);
  } catch {
    return false;
  }
}

/**
 * Judges the chain an endpoint serves with the one chain judgement (src/pki/judge-chain.ts), the bundle's chain
 * anchor as trust and `name` (the SNI, else the host) as the name: undefined when clients would accept it, else
 * the verdict. The anchor is what the bundle was validated against (validate-bundle.ts): the configured roots;
 * else the bundle's own root when it carries one; else its top certificate, above which the endpoint's clients
 * judge. So a path that stops exactly at that top certificate is fine, and one that stops below it (the server
 * sends the leaf without its intermediate) fails as `missing_intermediate`, as a browser would.
 */
export function judgeServedChain(
  servedPems: string[],
  expected: ServedExpectation,
  opts: { name?: string; now: Date },
): ChainFailure | undefined {
  const configured = expected.trustedRootPems?.length ? expected.trustedRootPems : undefined;
  const top = expected.chainPems[expected.chainPems.length - 1];
  const anchors = configured ?? (top && selfSigned(top) ? [top] : []);
  const judgement = judgeChain(servedPems.map(parseCertificate), {
    store: trustStore(anchors, false),
    now: opts.now,
    name: opts.name,
  });
  // Without a chain the leaf itself is the bundle's top certificate.
  const topFingerprint = top ? fingerprintOf(top) : expected.fingerprint.toLowerCase().replace(/:/g, '');
  const end = judgement.path[judgement.path.length - 1];
  const stopsAtTop = !configured && end?.fingerprint === topFingerprint;
  return judgement.failures.find((f) => !(stopsAtTop && NO_PATH.has(f.kind)));
}
