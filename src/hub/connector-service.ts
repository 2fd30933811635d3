/**
 * Connectors on the hub: deploys to endpoints that run no agent (SSH, a local command), through the same deploy
 * pipeline as agents (src/deploy/pipeline.ts) against a connector target (src/connectors/), reporting through the
 * same store transitions with actor `connector:<endpoint>`, so change windows, config test, reload, verify and
 * rollback behave exactly as on an agent.
 *
 * It learns what to do from the store's post-commit events (a new version, a changed subscription, a redeploy
 * request) and from a scan at start. Runs are per endpoint (one connection for all its subscriptions, one after
 * another), at most `concurrency` endpoints at once; every connector step has its own timeout, so a host that
 * accepts TCP and never answers holds one slot for its timeout and delays nobody else.
 */
import { setMaxListeners } from 'node:events';
import { z } from 'zod';
import { errorMessage } from '../core/errors.ts';
import type { Endpoint } from '../core/types.ts';
import { createConnectorTarget, type ConnectorContext } from '../connectors/registry.ts';
import type { ConnectorTarget } from '../connectors/connector-target.ts';
import type { DeployOutcome, DeployReport, DeployRequest } from '../deploy/deploy-contract.ts';
import { runPipeline } from '../deploy/pipeline.ts';
import { splitPemCertificates } from '../pki/inspect.ts';
import { DeploymentTransitionRefused, type FleetRow, type RedeployRequest } from '../store/store.ts';
import { ConnectorConfigStore } from './connector-config-store.ts';
import { SealedRecordStore } from './connector-records.ts';
import type { HubContext } from './hub-context.ts';
import { versionKeyContext } from '../store/meta-catalogue.ts';
import { GenerationCache } from '../store/write-generation.ts';

/** The `connectors:` section of the hub config. */
export const connectorsHubConfigShape = {
  connectors: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Connector endpoints deployed to at once. */
      concurrency: z.number().int().min(1).max(1024).default(16),
      /** Per config test and per reload on the endpoint. */
      commandTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
      /** How long verify keeps trying after a reload. */
      verifyTimeoutSeconds: z.number().int().min(1).max(600).default(10),
    })
    .prefault({}),
};
export type ConnectorsConfig = z.output<(typeof connectorsHubConfigShape)['connectors']>;

/** Deployment states a connector (re)starts the pipeline from on its own; the rest wait for a redeploy. */
const TO_DEPLOY = new Set(['pending', 'delivered', 'installed']);

export class ConnectorService {
  readonly configs: ConnectorConfigStore;
  private readonly queued = new Map<string, Map<string, RedeployRequest>>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly records = new Map<string, SealedRecordStore>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Renewed on every start (leadership gained again). */
  private abort = new AbortController();
  private unsubscribe: Array<() => void> = [];
  private started = false;
  private readonly connectorEndpoints: GenerationCache<'all', Set<string>>;

  constructor(
    private readonly ctx: HubContext,
    readonly config: ConnectorsConfig,
    private readonly opts: { factory?: (c: ConnectorContext) => ConnectorTarget } = {},
  ) {
    this.configs = new ConnectorConfigStore(ctx.store, ctx.sealer);
    this.connectorEndpoints = new GenerationCache(ctx.store.generation, 1, ['endpoints']);
    // Every run in flight listens on this one signal (up to `concurrency` at once): no leak warning past 10.
    setMaxListeners(0, this.abort.signal);
  }

  /** Subscribes to the store's events and deploys whatever connector endpoints still have to do. */
  start(): void {
    if (!this.config.enabled || this.started) return;
    this.started = true;
    if (this.abort.signal.aborted) this.abort = new AbortController();
    const { events } = this.ctx.store;
    this.unsubscribe = [
      events.on('version.added', ({ certificate }) => void this.requestForCertificate(certificate.id)),
      events.on('subscription.changed', ({ change, endpointId }) => {
        if (change !== 'deleted') this.request(endpointId);
      }),
      events.on('redeploy.requested', ({ request }) => void this.requestRedeploy(request)),
      events.on('endpoint.changed', ({ change, endpoint }) => {
        if (change === 'deleted') void this.forget(endpoint.id);
      }),
    ];
    void this.scan();
  }

  async stop(): Promise<void> {
    this.started = false;
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queued.clear();
    this.abort.abort(new Error('hub stopping'));
    await Promise.allSettled([...this.running.values()]);
  }

  /** Resolves when no run is in flight or queued (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.running.size || this.queued.size) {
      await Promise.allSettled([...this.running.values()]);
      if (!this.running.size && this.queued.size) this.pump();
    }
  }

  /** Deploys to the endpoint soon (its connector settings changed, a version appeared); no-op for agent ones. */
  request(endpointId: string, redeploy?: RedeployRequest): void {
    if (!this.started) return;
    const q = this.queued.get(endpointId) ?? new Map<string, RedeployRequest>();
    if (redeploy) q.set(redeploy.subscriptionId, redeploy);
    this.queued.set(endpointId, q);
    this.pump();
  }

  private async scan(): Promise<void> {
    try {
      for (const e of await this.ctx.store.listEndpoints()) if (e.kind === 'connector') this.request(e.id);
    } catch (e) {
      this.ctx.logger.error({ err_message: errorMessage(e) }, 'connector scan failed');
    }
  }

  /**
   * A new version: its connector endpoints deploy. The connector endpoints are read again only after a write to
   * endpoints, so a campaign's thousands of versions on a fleet of agents read nothing more than that.
   */
  private async requestForCertificate(certificateId: string): Promise<void> {
    try {
      const connectors = await this.connectorEndpoints.get('all', async () => {
        const all = await this.ctx.store.listEndpoints();
        return new Set(all.filter((e) => e.kind === 'connector').map((e) => e.id));
      });
      if (connectors.size === 0) return;
      for (const s of await this.ctx.store.listSubscriptions({ certificateId }))
        if (connectors.has(s.endpointId)) this.request(s.endpointId);
    } catch (e) {
      this.ctx.logger.error({ err_message: errorMessage(e) }, 'connector lookup after a new version failed');
    }
  }

  private async requestRedeploy(r: RedeployRequest): Promise<void> {
    const sub = await this.ctx.store.getSubscription(r.subscriptionId).catch(() => undefined);
    if (sub) this.request(sub.endpointId, r);
  }

  private async forget(endpointId: string): Promise<void> {
    this.records.delete(endpointId);
    await this.configs
      .remove(endpointId)
      .catch((e) =>
        this.ctx.logger.error({ err_message: errorMessage(e) }, 'removing connector settings failed'),
      );
  }

  /** Starts queued endpoints while slots are free; an endpoint already running waits for its run to end. */
  private pump(): void {
    for (const [id, redeploys] of this.queued) {
      if (this.running.size >= this.config.concurrency) return;
      if (this.running.has(id) || this.abort.signal.aborted) continue;
      this.queued.delete(id);
      const run = this.runEndpoint(id, redeploys)
        .catch((e) =>
          this.ctx.logger.error({ endpoint_id: id, err_message: errorMessage(e) }, 'connector run failed'),
        )
        .finally(() => {
          this.running.delete(id);
          this.pump();
        });
      this.running.set(id, run);
    }
  }

  private later(endpointId: string, at: Date): void {
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        this.request(endpointId);
      },
      Math.min(Math.max(at.getTime() - this.ctx.clock.now().getTime(), 0) + 1000, 2 ** 31 - 1),
    );
    t.unref();
    this.timers.add(t);
  }

  private recordsOf(endpointId: string): SealedRecordStore {
    let r = this.records.get(endpointId);
    if (!r)
      this.records.set(endpointId, (r = new SealedRecordStore(this.ctx.store, this.ctx.sealer, endpointId)));
    return r;
  }

  /** What the endpoint has to do now: subscriptions whose current version is not deployed yet, or asked again. */
  private due(
    rows: FleetRow[],
    redeploys: Map<string, RedeployRequest>,
  ): Array<{ row: FleetRow; redeploy?: RedeployRequest }> {
    const out: Array<{ row: FleetRow; redeploy?: RedeployRequest }> = [];
    const now = this.ctx.clock.now().getTime();
    for (const row of rows) {
      const v = row.current;
      if (!v) continue;
      const r = redeploys.get(row.subscription.id);
      const redeploy = r && r.versionId === v.id ? r : undefined;
      const state = row.deployment?.state ?? 'pending';
      if (redeploy || TO_DEPLOY.has(state)) {
        out.push({ row, ...(redeploy ? { redeploy } : {}) });
      } else if (state === 'waiting_window') {
        const next = String(row.deployment?.detail?.nextWindowAt ?? '');
        const at = next ? new Date(next) : undefined;
        if (!at || Number.isNaN(at.getTime()) || at.getTime() <= now) out.push({ row });
        else this.later(row.endpoint.id, at);
      }
    }
    return out;
  }

  private async runEndpoint(endpointId: string, redeploys: Map<string, RedeployRequest>): Promise<void> {
    const { store, logger } = this.ctx;
    const endpoint = await store.getEndpointById(endpointId);
    if (!endpoint || endpoint.kind !== 'connector') return;
    const work = this.due((await store.fleet({ endpointId })).items, redeploys);
    if (work.length === 0) return;
    const stored = await this.configs.get(endpointId);
    if (!stored || (stored.settings.kind === 'ssh' && !stored.settings.hostKeyFingerprint)) {
      // Nothing is tried before the endpoint is configured and its host key pinned; setting either requests a run.
      logger.warn(
        { endpoint: endpoint.name, waiting: work.length },
        stored
          ? `ssh host key of connector endpoint not pinned (certfleet endpoint trust-host-key ${endpoint.name}); its deployments stay pending`
          : 'connector endpoint has no connector settings; its deployments stay pending',
      );
      return;
    }
    const target = (this.opts.factory ?? createConnectorTarget)({
      endpoint,
      settings: stored.settings,
      secrets: this.configs.secrets(endpointId, stored),
      records: this.recordsOf(endpointId),
    });
    let reached = false;
    try {
      for (const item of work) {
        if (this.abort.signal.aborted) return;
        const outcome = await this.deployOne(
          endpoint,
          target,
          item.row,
          item.redeploy,
          () => (reached = true),
        );
        if (outcome.state === 'waiting_window' && outcome.nextWindowAt) {
          this.later(endpointId, new Date(outcome.nextWindowAt));
        }
      }
    } finally {
      await target.close().catch(() => undefined);
    }
    if (reached)
      await store.touchEndpoint(endpointId, this.ctx.clock.now().toISOString()).catch(() => undefined);
  }

  private async deployOne(
    endpoint: Endpoint,
    target: ConnectorTarget,
    row: FleetRow,
    redeploy: RedeployRequest | undefined,
    contact: () => void,
  ): Promise<DeployOutcome> {
    const { store, sealer, logger, clock } = this.ctx;
    const { subscription: sub, certificate: cert } = row;
    const actor = `connector:${endpoint.name}`;
    const version = (await store.getVersion(row.current!.id))!;
    const report = async (r: DeployReport): Promise<void> => {
      if (r.state !== 'failed' && r.state !== 'delivered') contact();
      try {
        await store.transitionDeployment(
          sub.id,
          version.id,
          r.state,
          { ...(r.reason ? { reason: r.reason } : {}), ...(r.detail ? { detail: r.detail } : {}) },
          actor,
        );
      } catch (e) {
        if (!(e instanceof DeploymentTransitionRefused)) throw e;
        logger.info({ endpoint: endpoint.name, state: r.state, from: e.from }, 'connector report refused');
      }
    };
    const log = { endpoint: endpoint.name, certificate: cert.name, version_id: version.id };
    let outcome: DeployOutcome;
    try {
      const sealed = await store.sealedKeyOf(version.id);
      const keyPem = sealer.unseal(sealed ?? '', versionKeyContext(cert.id, version.fingerprint));
      const req: DeployRequest = {
        certificateName: cert.name,
        sans: cert.sans,
        versionId: version.id,
        fingerprint: version.fingerprint,
        bundle: { certPem: version.certPem, chainPems: splitPemCertificates(version.chainPem), keyPem },
        subscription: {
          id: sub.id,
          outputs: sub.outputs,
          ...commandsFor(sub, target),
          ...(sub.window ? { window: sub.window } : {}),
          ...(sub.verify ? { verify: sub.verify } : {}),
        },
        ...(redeploy ? { redeploy: true, overrideWindow: redeploy.overrideWindow } : {}),
      };
      const state = row.deployment?.state ?? 'pending';
      if (state === 'pending') await report({ state: 'delivered', at: clock.now().toISOString() });
      logger.info({ ...log, ...(redeploy ? { redeploy: true } : {}) }, 'connector deploy starting');
      outcome = await runPipeline(req, target, report, {
        clock,
        signal: this.abort.signal,
        commandTimeoutMs: this.config.commandTimeoutSeconds * 1000,
        verifyTimeoutMs: this.config.verifyTimeoutSeconds * 1000,
      });
    } catch (e) {
      outcome = { state: 'failed', reason: 'connector', detail: { message: errorMessage(e) } };
      await report({
        state: 'failed',
        reason: 'connector',
        detail: outcome.detail,
        at: clock.now().toISOString(),
      }).catch(() => undefined);
    }
    logger.info(
      { ...log, state: outcome.state, ...(outcome.reason ? { reason: outcome.reason } : {}) },
      'connector deploy finished',
    );
    return outcome;
  }
}

/** The subscription's own config test and reload, else the ones its connector kind runs (http: its requests). */
function commandsFor(
  sub: { configTest?: string | null; reload?: string | null },
  target: ConnectorTarget,
): { configTest?: string; reload?: string } {
  const configTest = sub.configTest || target.commands?.configTest;
  const reload = sub.reload || target.commands?.reload;
  return { ...(configTest ? { configTest } : {}), ...(reload ? { reload } : {}) };
}
