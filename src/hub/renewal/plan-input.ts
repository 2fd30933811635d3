/** The planner's view of one certificate (PlanInput) from the store, and the order the budget counts for it. */
import type { X509Certificate } from 'node:crypto';
import type { Certificate, CertificateVersion } from '../../core/types.ts';
import { ariCertId } from '../../issuers/acme/ari.ts';
import { inspectCertificate, parseCertificate } from '../../pki/inspect.ts';
import type { HubContext } from '../hub-context.ts';
import { issuanceRequestFor, type Decision, type IssuanceRequest, type PlanInput } from '../planner/index.ts';
import type { AriCache } from './ari-cache.ts';
import { policyFacts, readRenewalState, type RenewalState } from './renewal-state.ts';

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
  const info = current ? inspectCertificate(current.certPem) : undefined;
  const input: PlanInput = {
    now,
    certificate: { name: cert.name, sans: cert.sans, keyType: cert.keyType, lifetimeDays: cert.lifetimeDays },
    ...(current && info
      ? {
          current: {
            notBefore: info.notBefore,
            notAfter: info.notAfter,
            sans: info.sans,
            keyType: keyTypeOf(current, cert),
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

// Reading a public key's details costs more than the rest of a plan input; a parsed certificate never changes.
const keyTypes = new WeakMap<X509Certificate, string | undefined>();

/** The key type of a version, from its public key (so a key-type change is noticed). */
function keyTypeOf(v: CertificateVersion, cert: Certificate): string {
  try {
    const x = parseCertificate(v.certPem);
    if (!keyTypes.has(x)) keyTypes.set(x, publicKeyType(x));
    return keyTypes.get(x) ?? cert.keyType;
  } catch {
    return cert.keyType;
  }
}

function publicKeyType(x: X509Certificate): string | undefined {
  const key = x.publicKey;
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') return d?.namedCurve === 'secp384r1' ? 'ecdsa-p384' : 'ecdsa-p256';
  if (key.asymmetricKeyType === 'rsa') return `rsa-${d?.modulusLength}`;
  return undefined;
}
