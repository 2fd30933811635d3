/**
 * Probe scheduling on the hub: every endpoint's probe targets on an interval, plus right after an agent reports
 * a reload. Probes run in batches through probeMany (bounded concurrency, a per-probe timeout, so a dead target
 * holds one slot for at most `timeoutMs` and never stalls the rest); batches never overlap. The latest result per
 * target is stored; the judgement (probe-judgement.ts) moves deployments to `verified` or `diverged`.
 *
 * Decisions use the injected clock (due times, grace, dates in certificates); waiting uses real timers.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { CertfleetError, errorMessage, endpointNotFound } from '../core/errors.ts';
import type { Endpoint, ProbeTarget } from '../core/types.ts';
import type { HubMetrics, ServedRow } from '../metrics/hub-metrics.ts';
import { splitPemCertificates } from '../pki/inspect.ts';
import { probeMany } from '../probe/probe-many.ts';
import type { ProbeResult } from '../probe/probe-result.ts';
import {
  DeploymentTransitionRefused,
  type FleetRow,
  type ProbeResultRecord,
  type Store,
} from '../store/store.ts';
import { GenerationCache } from '../store/write-generation.ts';
import type { HubContext } from './hub-context.ts';
import { judgeDeployment, observeTarget, type Judgement } from './probe-judgement.ts';
import {
  HUB_SOURCE,
  agentProbes,
  agentSource,
  hubProbes,
  observationOf,
  probeTargetKey,
  sourcesFor,
  targetsForSubscription,
} from '../probe/probe-targets.ts';
import type { AgentProbeResult } from '../protocol/wire.ts';

/** The `probes:` section of the hub config. */
export const probesHubConfigShape = {
  probes: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** How often each endpoint's targets are probed. */
      intervalSeconds: z.number().int().min(5).max(86_400).default(300),
      /** Probes in flight at once, over all endpoints. */
      concurrency: z.number().int().min(1).max(1024).default(64),
      /** Per target: TCP connect + STARTTLS + TLS handshake. */
      timeoutMs: z.number().int().min(100).max(60_000).default(5000),
      /** How long after a reported reload (or after the change window holding it) an old certificate is tolerated. */
      graceSeconds: z.number().int().min(0).max(86_400).default(300),
      /** Extra trusted roots (PEM file) besides the system roots and the hub's internal CA. */
      trustBundleFile: z.string().min(1).optional(),
    })
    .prefault({}),
};
export type ProbesConfig = z.output<(typeof probesHubConfigShape)['probes']>;

export interface SubscriptionJudgement extends Judgement {
  certificate: string;
  expected: string;
  targets: string[];
}

export interface EndpointProbeReport {
  endpoint: string;
  results: ProbeResultRecord[];
  judgements: SubscriptionJudgement[];
}

/** What a probe result looks like in the API: the stored record plus names. */
export interface ProbeView extends ProbeResultRecord {
  endpoint: string;
}

/** How long the immediate probe after a reload waits, so the server's new workers are up. */
const AFTER_RELOAD_DELAY_MS = 250;

export class ProbeService {
  private readonly due = new Map<string, number>(); // endpoint id → clock ms
  private readonly pending = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private tick?: NodeJS.Timeout;
  private draining?: Promise<void>;
  private roots?: string[];
  private stopped = false;
  private looping = false;
  private readonly abort = new AbortController();
  private unsubscribe?: () => void;
  private readonly tickMs: number;
  /**
   * The endpoints with something to probe, read again only after a write to endpoints or subscriptions: the loop
   * asks every second, and a read of every endpoint and subscription each time made a campaign's hub cost grow
   * with the fleet times its duration.
   */
  private readonly probeableCache: GenerationCache<'all', Endpoint[]>;

  constructor(
    private readonly ctx: HubContext,
    readonly config: ProbesConfig,
    private readonly opts: { metrics?: HubMetrics; tickMs?: number } = {},
  ) {
    this.tickMs = opts.tickMs ?? 1000;
    this.probeableCache = new GenerationCache(ctx.store.generation, 1, ['endpoints', 'subscriptions']);
  }

  /** Starts the interval loop. Each endpoint's first probe is spread over the first minute (or interval). */
  start(): void {
    if (!this.config.enabled || this.looping || this.stopped) return;
    this.looping = true;
    // An agent's or connector's reload (reported after the commit, on any hub) triggers a probe at once.
    this.unsubscribe = this.ctx.store.events.on('deployment.transitioned', ({ deployment, actor }) => {
      if (
        !/^(agent|connector):/.test(actor) ||
        (deployment.state !== 'reloaded' && deployment.state !== 'verified')
      )
        return;
      void this.endpointOfSubscription(deployment.subscriptionId).then((id) => {
        if (id) this.requestProbe(id, AFTER_RELOAD_DELAY_MS);
      });
    });
    const loop = () => {
      this.tick = setTimeout(() => {
        void this.enqueueDue()
          .catch((e) => this.ctx.logger.error({ err: errorMessage(e) }, 'probe scheduling failed'))
          .finally(() => {
            if (this.looping) loop();
          });
      }, this.tickMs);
      this.tick.unref();
    };
    loop();
  }

  /**
   * Stops the loop and the probes after reloads (this hub stopped leading); `start` resumes them. Probes asked for
   * through the API still run.
   */
  async pause(): Promise<void> {
    this.looping = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.tick) clearTimeout(this.tick);
    this.tick = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.pending.clear();
    await this.draining?.catch(() => undefined);
  }

  /** Hub shutdown: pauses and aborts the probes in flight; for good. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort(new Error('hub stopping'));
    await this.pause();
  }

  /** Probes this endpoint as soon as possible (after `delayMs`), outside its interval. */
  requestProbe(endpointId: string, delayMs = 0): void {
    if (this.stopped) return;
    if (delayMs <= 0) {
      this.pending.add(endpointId);
      void this.drain();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.requestProbe(endpointId);
    }, delayMs);
    t.unref();
    this.timers.add(t);
  }

  /** Resolves when no batch is running or queued (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.draining || this.pending.size || this.timers.size) {
      await (this.draining ?? new Promise((r) => setTimeout(r, 20)));
    }
  }

  /** Probes every endpoint that has targets now, whatever its schedule; returns what was seen and decided. */
  async runOnce(): Promise<EndpointProbeReport[]> {
    const endpoints = await this.allProbeable();
    await this.draining?.catch(() => undefined);
    return this.probeEndpoints(endpoints);
  }

  /** Probes the named endpoint now. */
  async probeEndpoint(name: string): Promise<EndpointProbeReport> {
    const endpoint = await this.ctx.store.getEndpoint(name);
    if (!endpoint) {
      throw endpointNotFound(name);
    }
    await this.draining?.catch(() => undefined);
    return (await this.probeEndpoints([endpoint]))[0];
  }

  /** Latest stored results with endpoint names. */
  async listResults(): Promise<ProbeView[]> {
    const names = new Map((await this.ctx.store.listEndpoints()).map((e) => [e.id, e.name]));
    return (await this.ctx.store.listProbeResults())
      .filter((r) => names.has(r.endpointId))
      .map((r) => ({ ...r, endpoint: names.get(r.endpointId)! }));
  }

  /**
   * Per subscription (certificate × endpoint) with probe targets: what is served, whether it is the current
   * version, and the earliest served notAfter. Feeds `certfleet status`, metrics and expiry alerts. Reads the fleet
   * read model (one query) unless the caller already holds its rows.
   */
  async servedSummary(fleet?: FleetRow[]): Promise<ServedSummaryRow[]> {
    const rows = fleet ?? (await this.ctx.store.fleet()).items;
    const out: ServedSummaryRow[] = [];
    for (const { subscription: sub, certificate: cert, endpoint, current: v, ...row } of rows) {
      const targets = targetsForSubscription(endpoint, sub, cert, row.endpointSubscriptions);
      // every result of a source that probes the target (the hub, the endpoint's agent, or both)
      const seen = targets.flatMap((t) =>
        row.probes.filter(
          (r) => r.targetKey === probeTargetKey(t) && sourcesFor(t, endpoint.name).includes(r.source),
        ),
      );
      if (seen.length === 0) continue;
      const served = seen.find((r) => r.fingerprint && r.fingerprint !== v?.fingerprint) ?? seen[0];
      const notAfters = seen.filter((r) => r.notAfter).map((r) => r.notAfter!);
      const notBefores = seen.filter((r) => r.notBefore).map((r) => r.notBefore!);
      const failed = seen.find((r) => r.errorKind);
      out.push({
        subscriptionId: sub.id,
        certificate: cert.name,
        endpoint: endpoint.name,
        fingerprint: served.fingerprint ?? null,
        source: served.source,
        sources: [...new Set(seen.map((r) => r.source))],
        matchesCurrent: v ? seen.every((r) => r.fingerprint === v.fingerprint) : false,
        notAfter: notAfters.sort()[0] ?? null,
        notBefore: notBefores.sort()[0] ?? null,
        probedAt: seen.map((r) => r.at).sort()[0],
        ok: seen.every((r) => r.ok),
        error: failed ? { kind: failed.errorKind!, message: failed.errorMessage ?? '' } : null,
      });
    }
    return out;
  }

  /** For metrics. */
  async servedRows(): Promise<ServedRow[]> {
    return (await this.servedSummary()).map((r) => ({
      certificate: r.certificate,
      endpoint: r.endpoint,
      ...(r.notAfter ? { notAfter: r.notAfter } : {}),
      ...(r.notBefore ? { notBefore: r.notBefore } : {}),
    }));
  }

  // ---------------------------------------------------------------------------------------------------------

  private async endpointOfSubscription(subscriptionId: string): Promise<string | undefined> {
    return (await this.ctx.store.getSubscription(subscriptionId))?.endpointId;
  }

  private async enqueueDue(): Promise<void> {
    const now = this.ctx.clock.now().getTime();
    const intervalMs = this.config.intervalSeconds * 1000;
    for (const e of await this.allProbeable()) {
      let due = this.due.get(e.id);
      if (due === undefined) {
        // spread first probes so a restart does not probe the whole fleet in one burst
        due = now + Math.floor(Math.random() * Math.min(intervalMs, 60_000));
        this.due.set(e.id, due);
      }
      if (due <= now) this.pending.add(e.id);
    }
    if (this.pending.size) await this.drain();
  }

  /** One batch at a time; requests arriving meanwhile form the next batch. */
  private drain(): Promise<void> {
    this.draining ??= (async () => {
      try {
        while (this.pending.size && !this.stopped) {
          const ids = [...this.pending];
          this.pending.clear();
          const endpoints = await this.probeable(
            (await Promise.all(ids.map((id) => this.ctx.store.getEndpointById(id)))).filter(
              (e): e is Endpoint => !!e,
            ),
          );
          try {
            await this.probeEndpoints(endpoints);
          } catch (e) {
            this.ctx.logger.error({ err: errorMessage(e) }, 'probe batch failed');
          }
        }
      } finally {
        this.draining = undefined;
      }
    })();
    return this.draining;
  }

  private async trustRoots(): Promise<string[]> {
    if (this.roots) return this.roots;
    const roots = [this.ctx.internalCa.rootPem];
    if (this.config.trustBundleFile) {
      let text: string;
      try {
        text = await readFile(this.config.trustBundleFile, 'utf8');
      } catch {
        throw new CertfleetError(
          'CONFIG_INVALID',
          `probes.trustBundleFile ${this.config.trustBundleFile} cannot be read`,
          'point it at a readable PEM file of CA certificates, or remove it',
        );
      }
      roots.push(...splitPemCertificates(text));
    }
    this.roots = roots;
    return roots;
  }

  private async probeEndpoints(endpoints: Endpoint[]): Promise<EndpointProbeReport[]> {
    if (endpoints.length === 0) return [];
    const now = this.ctx.clock.now();
    const targets: Array<{ endpoint: Endpoint; target: ProbeTarget }> = [];
    for (const endpoint of endpoints) {
      this.due.set(endpoint.id, now.getTime() + this.config.intervalSeconds * 1000);
      const seen = new Set<string>();
      for (const target of await this.hubTargets(endpoint)) {
        const key = probeTargetKey(target);
        if (seen.has(key)) continue;
        seen.add(key);
        targets.push({ endpoint, target });
      }
    }
    const results =
      targets.length === 0
        ? []
        : await probeMany(
            targets.map((t) => t.target),
            {
              trustedRootPems: await this.trustRoots(),
              useSystemRoots: true,
              timeoutMs: this.config.timeoutMs,
              concurrency: this.config.concurrency,
              signal: this.abort.signal,
              now,
            },
            (r) =>
              this.opts.metrics?.observeProbe(
                resultLabel(r),
                r.handshakeMs === undefined ? undefined : r.handshakeMs / 1000,
                'hub',
              ),
          );
    // probeMany returns one result per target here (allAddresses is off), in target order
    const records: ProbeResultRecord[] = results.map((r, i) =>
      toRecord(targets[i].endpoint.id, targets[i].target, r),
    );
    if (this.stopped) return [];
    await this.ctx.store.saveProbeResults(records);
    const reports: EndpointProbeReport[] = [];
    for (const endpoint of endpoints) {
      const mine = records.filter((r) => r.endpointId === endpoint.id);
      reports.push({ endpoint: endpoint.name, results: mine, judgements: await this.judge(endpoint) });
    }
    return reports;
  }

  /**
   * Endpoints with something to probe: targets of their own, or a subscription's verify target (`hubTargets`).
   * Counting only the endpoint's own targets left endpoints probed through their subscriptions' verify targets
   * unprobed after a reload and on schedule: the dashboard showed such a target with nothing served.
   */
  private async probeable(endpoints: Endpoint[]): Promise<Endpoint[]> {
    if (endpoints.every(hasOwnTargets)) return endpoints;
    if (endpoints.length === 1) {
      const subs = await this.ctx.store.listSubscriptions({ endpointId: endpoints[0].id });
      return subs.some((s) => s.verify) ? endpoints : [];
    }
    const ids = new Set((await this.allProbeable()).map((e) => e.id));
    return endpoints.filter((e) => hasOwnTargets(e) || ids.has(e.id));
  }

  /** Every endpoint with something to probe (see `probeable`), cached while endpoints and subscriptions are unchanged. */
  private allProbeable(): Promise<Endpoint[]> {
    return this.probeableCache.get('all', async () => {
      const [endpoints, subs] = await Promise.all([
        this.ctx.store.listEndpoints(),
        this.ctx.store.listSubscriptions(),
      ]);
      const verified = new Set(subs.filter((s) => s.verify).map((s) => s.endpointId));
      return endpoints.filter((e) => hasOwnTargets(e) || verified.has(e.id));
    });
  }

  /** The targets the hub probes itself: the endpoint's (unless `from: agent`) plus subscriptions' verify targets. */
  private async hubTargets(endpoint: Endpoint): Promise<ProbeTarget[]> {
    const subs = await this.ctx.store.listSubscriptions({ endpointId: endpoint.id });
    return [...endpoint.probeTargets.filter(hubProbes), ...subs.flatMap((s) => (s.verify ? [s.verify] : []))];
  }

  /**
   * An agent's report of its own probes (`POST /agent/probe-results`): every result must be for one of its
   * endpoint's targets marked `from: agent` or `both`, else nothing is stored (FORBIDDEN). `at` is moved onto the
   * hub's clock by the agent's own offset (`agentNow`, the signed request time), so a skewed agent clock can
   * neither make an old observation look fresh nor a fresh one stale. Stored under `agent:<endpoint>`, then the
   * endpoint is judged on everything stored.
   */
  async acceptAgentResults(
    endpoint: Endpoint,
    results: AgentProbeResult[],
    agentNow: number,
  ): Promise<SubscriptionJudgement[]> {
    // the caller's endpoint may come from the agent-auth cache: check against the stored targets
    endpoint = (await this.ctx.store.getEndpointById(endpoint.id)) ?? endpoint;
    const allowed = new Set(endpoint.probeTargets.filter(agentProbes).map(probeTargetKey));
    const foreign = results.find((r) => !allowed.has(r.targetKey));
    if (foreign) {
      throw new CertfleetError(
        'FORBIDDEN',
        `probe target ${foreign.targetKey} is not one endpoint "${endpoint.name}" probes from its agent`,
        `mark it \`from: agent\` or \`both\` (certfleet endpoint set ${endpoint.name} --probe ${foreign.targetKey}@agent), or resync the agent`,
      );
    }
    const offset = this.ctx.clock.now().getTime() - agentNow;
    const source = agentSource(endpoint.name);
    const records = results.map(({ targetKey, at, ...r }): ProbeResultRecord => ({
      ...r,
      endpointId: endpoint.id,
      targetKey,
      source,
      at: new Date(new Date(at).getTime() + offset).toISOString(),
    }));
    for (const r of records) {
      const seconds = r.handshakeMs === undefined ? undefined : r.handshakeMs / 1000;
      this.opts.metrics?.observeProbe(r.ok ? 'ok' : (r.errorKind ?? 'invalid'), seconds, 'agent');
    }
    await this.ctx.store.saveProbeResults(records);
    return this.judge(endpoint);
  }

  /**
   * Judges the endpoint's subscriptions on the latest stored results of every source: each target on the sources
   * its `from` names (hub, the endpoint's agent, or both; see observeTarget for how they combine).
   */
  private async judge(endpoint: Endpoint): Promise<SubscriptionJudgement[]> {
    const store = this.ctx.store;
    // one query: the endpoint's subscriptions with certificate, current version, deployment and stored results
    const rows = (await store.fleet({ endpointId: endpoint.id })).items;
    const out: SubscriptionJudgement[] = [];
    for (const { subscription: sub, certificate: cert, current: version, deployment, probes } of rows) {
      if (!version) continue;
      const targets = targetsForSubscription(endpoint, sub, cert, rows.length);
      if (targets.length === 0) continue; // no probe targets: the agent's own local verification stands
      const keys = targets.map(probeTargetKey);
      const seen = targets.map((t) =>
        observeTarget({
          key: probeTargetKey(t),
          sources: sourcesFor(t, endpoint.name),
          results: probes.filter((r) => r.targetKey === probeTargetKey(t)),
          expected: version.fingerprint,
          ...(deployment ? { deployment } : {}),
        }),
      );
      const observations = seen.map((s) => s.observation);
      const byKey = new Map(seen.flatMap((s) => (s.result ? [[s.observation.key, s.result] as const] : [])));
      const sources = seen.flatMap((s) => (s.result ? [`${s.result.targetKey} ${s.result.source}`] : []));
      const now = this.ctx.clock.now();
      const j = judgeDeployment({
        ...(deployment ? { deployment } : {}),
        expected: version.fingerprint,
        observations,
        now,
        graceMs: this.config.graceSeconds * 1000,
        ...(sub.window ? { window: sub.window } : {}),
      });
      out.push({ ...j, certificate: cert.name, expected: version.fingerprint, targets: keys });
      if (j.action === 'verify') {
        await this.moveAsProbe(
          sub.id,
          version.id,
          'verified',
          {
            reason: `a probe saw the version served on every target (${sources.join(', ')})`,
            detail: { targets: keys, sources, fingerprint: version.fingerprint, at: now.toISOString() },
          },
          'probe',
        );
      } else if (j.action === 'diverge' && j.mismatch) {
        const r = byKey.get(j.mismatch.target);
        await this.moveAsProbe(
          sub.id,
          version.id,
          'diverged',
          {
            reason:
              `${j.mismatch.target} serves certificate ${j.mismatch.served.slice(0, 16)}… ` +
              `(seen from ${r?.source ?? HUB_SOURCE}) instead of version ` +
              `${version.serial} (${version.fingerprint.slice(0, 16)}…) ${Math.round(this.config.graceSeconds)} s ` +
              `after the reload: the reload did not take effect or another config serves this name`,
            detail: {
              target: j.mismatch.target,
              source: r?.source,
              served: j.mismatch.served,
              expected: version.fingerprint,
              servedNotAfter: r?.notAfter,
              deadline: j.deadline?.toISOString(),
              at: now.toISOString(),
            },
          },
          'probe',
        );
      } else if (j.deadline && j.status !== 'diverged') {
        // probe again right when the old certificate stops being tolerated
        const due = j.deadline.getTime() + 1000;
        const cur = this.due.get(endpoint.id);
        if (cur === undefined || due < cur) this.due.set(endpoint.id, due);
      }
    }
    return out;
  }

  /**
   * A probe's verdict as a transition. The deployment may have moved since it was read (an agent rolled back during
   * the probe): the store then refuses the move (and records the refusal), and the newer state stands.
   */
  private async moveAsProbe(...args: Parameters<Store['transitionDeployment']>): Promise<void> {
    try {
      await this.ctx.store.transitionDeployment(...args);
    } catch (e) {
      if (!(e instanceof DeploymentTransitionRefused)) throw e;
      this.ctx.logger.info(
        { subscription_id: args[0], version_id: args[1], to: args[2], from: e.from },
        'deployment moved on before the probe verdict was written; left as it is',
      );
    }
  }
}

export interface ServedSummaryRow {
  subscriptionId: string;
  certificate: string;
  endpoint: string;
  /** The served fingerprint (the first one differing from the current version, if any). */
  fingerprint: string | null;
  /** Where that was seen: `hub` or `agent:<endpoint>`. */
  source: string;
  /** Every source whose results this row summarises. */
  sources: string[];
  matchesCurrent: boolean;
  notAfter: string | null;
  notBefore: string | null;
  /** The oldest of the targets' last probe times. */
  probedAt: string;
  ok: boolean;
  error: { kind: string; message: string } | null;
}

function resultLabel(r: ProbeResult): string {
  return r.ok ? 'ok' : (r.error?.kind ?? 'invalid');
}

function toRecord(endpointId: string, target: ProbeTarget, r: ProbeResult): ProbeResultRecord {
  return { endpointId, source: HUB_SOURCE, ...observationOf(target, r) };
}

const hasOwnTargets = (e: Endpoint) => e.probeTargets.some(hubProbes);
