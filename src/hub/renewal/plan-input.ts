/** The planner's view of one certificate (PlanInput) from the store, and the order the budget counts for it. */
import type { Certificate, CertificateVersion } from '../../core/types.ts';
import { ariCertId } from '../../issuers/acme/ari.ts';
import { certificateReading, inspectCertificate, parseCertificate } from '../../pki/inspect.ts';
import type { HubContext } from '../hub-context.ts';
import { issuanceRequestFor, type Decision, type IssuanceRequest, type PlanInput } from '../planner/index.ts';
import type { AriCache } from './ari-cache.ts';
import { policyFacts, readRenewalState, type RenewalState } from './renewal-state.ts';
import { setBounded } from '../../core/bounded-map.ts';

export interface CertificatePlanInput {
  input: PlanInput;
  current?: CertificateVersion;
  state: RenewalState;
}

/** Reads the certificate's current version and renewal state; refreshes ARI first when `fetchAri` is set. */
export async function planInputFor(
  ctx: HubContext,
  ari: AriCache,
  cert: Certificate,
  opts: { fetchAri?: boolean; signal?: AbortSignal } = {},
): Promise<CertificatePlanInput> {
  const now = ctx.clock.now();
  const current = await ctx.store.currentVersion(cert.id);
  let state = await readRenewalState(ctx.store, cert.id);
  if (current && opts.fetchAri) state = await ari.refresh(cert, current, state, now, opts.signal);
  const facts = current && versionFacts(current);
  const input: PlanInput = {
    now,
    certificate: { name: cert.name, sans: cert.sans, keyType: cert.keyType, lifetimeDays: cert.lifetimeDays },
    ...(facts
      ? {
          current: {
            notBefore: new Date(facts.notBefore),
            notAfter: new Date(facts.notAfter),
            sans: [...facts.sans],
            keyType: facts.keyType ?? cert.keyType,
          },
        }
      : {}),
    ...policyFacts(state, current),
    ...(await replacingRevoked(ctx, cert, state, current)),
    jitterSeed: cert.id,
  };
  return { input, ...(current ? { current } : {}), state };
}

/**
 * After a revocation, the replacement (`current`) must be served, not only issued: how many subscribed endpoints
 * have not verified it yet. Read only while a revoked version is on record and not current.
 */
async function replacingRevoked(
  ctx: HubContext,
  cert: Certificate,
  state: RenewalState,
  current: CertificateVersion | undefined,
): Promise<Pick<PlanInput, 'replacingRevoked'>> {
  const last = state.revoked?.at(-1);
  if (!current || !last || last.versionId === current.id) return {};
  const subs = await ctx.store.listSubscriptions({ certificateId: cert.id });
  const verified = new Set(
    (await ctx.store.listDeployments({ versionId: current.id, states: ['verified'] })).map(
      (d) => d.subscriptionId,
    ),
  );
  const unserved = subs.filter((s) => !verified.has(s.id)).length;
  return {
    replacingRevoked: { at: new Date(last.at), reason: last.reason, unserved, subscribed: subs.length },
  };
}

/** The order as the budget counts it: an ARI renewal carries `replaces` of the current version. */
export function requestFor(
  input: PlanInput,
  decision: Decision,
  current?: CertificateVersion,
): IssuanceRequest {
  const request = issuanceRequestFor(input, decision);
  if (request.isRenewal && current) {
    try {
      request.replaces = ariCertId(current.certPem);
    } catch {
      request.isRenewal = false;
    }
  }
  return request;
}

/** What the planner reads of a version's certificate; the key type from its public key (a change is noticed). */
interface VersionFacts {
  certPem: string;
  notBefore: number;
  notAfter: number;
  sans: readonly string[];
  keyType: string | undefined;
}

/**
 * A version's facts by its id, the last FACTS_KEPT: a version never changes, and parsing its certificate and
 * reading its public key cost more than the rest of a plan input, which every pass and re-check makes again.
 */
const factsById = new Map<string, VersionFacts>();
const FACTS_KEPT = 10_000;

function versionFacts(v: CertificateVersion): VersionFacts {
  const kept = factsById.get(v.id);
  if (kept?.certPem === v.certPem) return kept;
  const info = inspectCertificate(v.certPem);
  let keyType: string | undefined;
  try {
    keyType = publicKeyType(v.certPem);
  } catch {
    keyType = undefined;
  }
  const facts: VersionFacts = {
    certPem: v.certPem,
    notBefore: info.notBefore.getTime(),
    notAfter: info.notAfter.getTime(),
    sans: info.sans,
    keyType,
  };
  setBounded(factsById, FACTS_KEPT, v.id, facts);
  return facts;
}

/** The key type of a certificate's public key: from its DER reading, or (anything unusual) node's KeyObject. */
function publicKeyType(certPem: string): string | undefined {
  const read = certificateReading(certPem)?.key;
  const key = read ? undefined : parseCertificate(certPem).publicKey;
  const type = read?.type ?? key?.asymmetricKeyType;
  if (type === 'ec')
    return (read?.curve ?? key?.asymmetricKeyDetails?.namedCurve) === 'secp384r1'
      ? 'ecdsa-p384'
      : 'ecdsa-p256';
  if (type === 'rsa') return `rsa-${read?.bits ?? key?.asymmetricKeyDetails?.modulusLength}`;
  return undefined;
}
