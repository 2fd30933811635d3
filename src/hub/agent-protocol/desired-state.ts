import type {
  Certificate,
  CertificateVersion,
  Endpoint,
  ProbeTarget,
  Subscription,
} from '../../core/types.ts';
import { agentProbes } from '../../probe/probe-targets.ts';
import type { RedeployRequest, Store } from '../../store/store.ts';
import { subscriptionSpecOf } from '../../core/subscription-spec.ts';
import type { BundleResponse, DesiredState } from '../../protocol/wire.ts';
import type { RevisionChanges } from './revision-notifier.ts';

const NO_TARGETS: ProbeTarget[] = [];

/** The targets of `endpoint` its agent probes (`from: agent | both`). */
const agentTargets = (endpoint: Endpoint): ProbeTarget[] => {
  const targets = endpoint.probeTargets.filter(agentProbes);
  return targets.length ? targets : NO_TARGETS;
};

export interface InlineBundles {
  /** Version ids the agent holds; every other desired version gets its bundle inlined. */
  have: Set<string>;
  bundle: (cert: Certificate, version: CertificateVersion) => Promise<BundleResponse>;
}

/**
 * Builds an endpoint's desired state. Certificates, their current versions and each endpoint's subscriptions are
 * cached per revision (every change to them bumps it; a bump whose scope is known drops only what it touched), so when a renewal wakes a thousand agents subscribed to one
 * certificate the hub reads the certificate once and each endpoint's subscriptions at most once per revision.
 */
export class DesiredStateBuilder {
  private cacheRevision = -1;
  private readonly certs = new Map<string, Promise<{ cert?: Certificate; version?: CertificateVersion }>>();
  /** Every subscription, grouped by endpoint, read in one query per revision (not one per endpoint). */
  private subs?: Promise<Map<string, Subscription[]>>;
  /** Manual deploy requests by subscription id, read once per revision (each request bumps it). */
  private redeploys?: Promise<Map<string, RedeployRequest>>;
  private running?: Promise<number>;
  private queued?: Promise<number>;
  /**
   * The targets each endpoint's agent probes, read once per revision (a change to probe targets bumps it). Only the
   * targets are kept, most often none (one shared empty list): the endpoint itself is the agent-auth cache's, and a
   * copy per parked agent here would double what the hub holds for each.
   */
  private readonly targets = new Map<string, Promise<ProbeTarget[] | undefined>>();

  /**
   * `probes`: how agents probe the targets marked `from: agent | both` (the hub's probe settings). `changes`: what
   * the bumps between two revisions touched (the RevisionNotifier's), so a new version drops that certificate's
   * entry only and not every subscription: during a campaign every issuance bumps the revision.
   */
  constructor(
    private readonly store: Store,
    private readonly probes: { intervalSeconds: number; timeoutMs: number } = {
      intervalSeconds: 300,
      timeoutMs: 5000,
    },
    private readonly changes?: (from: number, to: number) => RevisionChanges | undefined,
  ) {}

  /**
   * The store's revision. A burst of requests shares reads: a caller arriving while a read runs waits for the next
   * one (queued once for all of them), so nobody gets a revision read before it arrived, and a thousand requests
   * cost two reads, not a thousand.
   */
  revision(): Promise<number> {
    if (!this.running) return this.startRead();
    this.queued ??= this.running
      .catch(() => 0)
      .then(() => {
        this.queued = undefined;
        return this.startRead();
      });
    return this.queued;
  }

  private startRead(): Promise<number> {
    const read = this.store.revision();
    this.running = read;
    read
      .finally(() => {
        if (this.running === read) this.running = undefined;
      })
      .catch(() => {});
    return read;
  }

  /** The endpoint's subscriptions at the current revision. */
  async subscriptionsOf(endpointId: string): Promise<Subscription[]> {
    return this.subscriptions(endpointId, await this.revision());
  }

  private certificate(id: string, revision: number) {
    this.at(revision);
    let hit = this.certs.get(id);
    if (!hit) {
      hit = Promise.all([this.store.getCertificateById(id), this.store.currentVersion(id)]).then(
        ([cert, version]) => ({ cert, version }),
      );
      this.certs.set(id, hit);
    }
    return hit;
  }

  private at(revision: number): void {
    if (revision === this.cacheRevision) return;
    const changed = revision > this.cacheRevision ? this.changes?.(this.cacheRevision, revision) : undefined;
    this.cacheRevision = revision;
    if (changed) {
      for (const id of changed.certificateIds) this.certs.delete(id);
      if (changed.endpointIds.size === 0) return;
      for (const id of changed.endpointIds) this.targets.delete(id);
      this.subs = undefined;
      this.redeploys = undefined;
      return;
    }
    this.certs.clear();
    this.targets.clear();
    this.subs = undefined;
    this.redeploys = undefined;
  }

  private async subscriptions(endpointId: string, revision: number): Promise<Subscription[]> {
    this.at(revision);
    if (!this.subs) {
      const all = this.store.listSubscriptions().then((list) => {
        const byEndpoint = new Map<string, Subscription[]>();
        for (const s of list) byEndpoint.set(s.endpointId, [...(byEndpoint.get(s.endpointId) ?? []), s]);
        return byEndpoint;
      });
      all.catch(() => {
        if (this.subs === all) this.subs = undefined;
      });
      this.subs = all;
    }
    return (await this.subs).get(endpointId) ?? [];
  }

  private redeployRequests(revision: number): Promise<Map<string, RedeployRequest>> {
    this.at(revision);
    if (!this.redeploys) {
      const all = this.store
        .listRedeployRequests()
        .then((list) => new Map(list.map((r) => [r.subscriptionId, r])));
      all.catch(() => {
        if (this.redeploys === all) this.redeploys = undefined;
      });
      this.redeploys = all;
    }
    return this.redeploys;
  }

  async build(endpoint: Endpoint, inline?: InlineBundles): Promise<DesiredState> {
    // Read the revision first: anything committed later bumps it again and wakes the agent once more.
    const revision = await this.revision();
    const subs = await this.subscriptions(endpoint.id, revision);
    const redeploys = await this.redeployRequests(revision);
    const subscriptions = await Promise.all(
      subs.map(async (s) => {
        const { cert, version } = await this.certificate(s.certificateId, revision);
        const bundle =
          inline && cert && version && !inline.have.has(version.id)
            ? await inline.bundle(cert, version)
            : undefined;
        // A request for an older version is void: the agent deploys the current one on its own.
        const redeploy = redeploys.get(s.id);
        return {
          subscriptionId: s.id,
          certificateName: cert?.name ?? '',
          sans: cert?.sans ?? [],
          spec: subscriptionSpecOf(s),
          ...(version
            ? {
                version: {
                  id: version.id,
                  fingerprint: version.fingerprint,
                  serial: version.serial,
                  notAfter: version.notAfter,
                },
              }
            : {}),
          ...(bundle ? { bundle } : {}),
          ...(redeploy && version && redeploy.versionId === version.id
            ? { redeploy: { token: redeploy.token, overrideWindow: redeploy.overrideWindow } }
            : {}),
        };
      }),
    );
    // The caller's endpoint may come from the agent-auth cache; its probe targets are read at this revision.
    let current = this.targets.get(endpoint.id);
    if (!current) {
      current = this.store.getEndpointById(endpoint.id).then((e) => e && agentTargets(e));
      current.catch(() => this.targets.delete(endpoint.id));
      this.targets.set(endpoint.id, current);
    }
    const targets = (await current) ?? agentTargets(endpoint);
    return {
      revision,
      endpointId: endpoint.id,
      endpointName: endpoint.name,
      subscriptions,
      ...(targets.length ? { probes: { targets, ...this.probes } } : {}),
    };
  }
}
