/** Challenge types keep their RFC 8555 wire names (section 8.3, 8.4) and RFC 8737's tls-alpn-01. */
export type ChallengeType = 'http-01' | 'dns-01' | 'tls-alpn-01';

/** One challenge to answer. `identifier` is the DNS name without any `*.` prefix. */
export interface ChallengeInput {
  identifier: string;
  token: string;
  /** token + '.' + account key thumbprint (RFC 8555 section 8.1). */
  keyAuthorization: string;
  /** base64url(SHA-256(keyAuthorization)): the TXT value for dns-01 (RFC 8555 section 8.4). */
  dnsValue?: string;
}

/**
 * Answers one kind of ACME challenge. Contract: `present` returns once the answer is reachable by the CA
 * (for dns-01 that includes propagation when the solver checks it); `cleanup` removes it and is safe to call
 * after a failed or partial `present`. Both honour `signal`. Solvers may be called concurrently for different
 * identifiers and must keep their answers apart.
 */
export interface Solver {
  readonly type: ChallengeType;
  present(ch: ChallengeInput, signal?: AbortSignal): Promise<void>;
  cleanup(ch: ChallengeInput, signal?: AbortSignal): Promise<void>;
}

/** Picks the solver for one identifier among the challenge types the CA offers; undefined if none fits. */
export type SolverSelector = (
  identifier: { value: string; wildcard: boolean },
  offered: ChallengeType[],
) => Solver | undefined;

/**
 * The first solver, in the given order, whose type the CA offers. Wildcards only take dns-01 (RFC 8555
 * section 7.1.3), so other solvers are skipped for them.
 */
export function firstOffered(solvers: Solver[]): SolverSelector {
  return (identifier, offered) =>
    solvers.find((s) => offered.includes(s.type) && (!identifier.wildcard || s.type === 'dns-01'));
}

/** Dispatches by domain suffix (longest match wins), then falls back to `fallback`. */
export function bySuffix(rules: Record<string, SolverSelector>, fallback?: SolverSelector): SolverSelector {
  const suffixes = Object.keys(rules).sort((a, b) => b.length - a.length);
  return (identifier, offered) => {
    const name = identifier.value.toLowerCase();
    const hit = suffixes.find((s) => name === s || name.endsWith(`.${s}`));
    return hit ? rules[hit](identifier, offered) : fallback?.(identifier, offered);
  };
}
