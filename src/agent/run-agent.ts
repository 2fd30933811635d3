import { EventEmitter } from 'node:events';
import { systemClock, type Clock } from '../core/clock.ts';
import { errorMessage } from '../core/errors.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { AgentClient, isTransient } from './agent-client.ts';
import { loadIdentity, type AgentIdentity } from './agent-identity.ts';
import { recoverPendingWrites } from './atomic-write.ts';
import { Backoff } from './backoff.ts';
import type {
  DeployOutcome,
  DeployReport,
  DeployReporter,
  DeployRequest,
} from '../deploy/deploy-contract.ts';
import { outputDirs } from './output-dirs.ts';
import { AgentProber } from './agent-prober.ts';
import { openSealedKey } from '../protocol/sealed-key.ts';
import {
  AgentStateStore,
  CorruptFileError,
  type AgentLocalState,
  type RefusedReport,
} from './state-store.ts';
import { subscribeDesiredState } from './subscriber.ts';
import type { AgentReport, BundleResponse, DesiredState, DesiredSubscription } from '../protocol/wire.ts';

/**
 * How the runner deploys one version (`deployLocally`: the pipeline in src/deploy/ against this machine);
 * injectable so tests and benchmarks can stand in for it.
 */
export type DeployFn = (
  req: DeployRequest,
  report: DeployReporter,
  opts: { stateDir: string; clock?: Clock; signal?: AbortSignal },
) => Promise<DeployOutcome>;

/** Loaded on first use, so the run loop does not pay for the pipeline's modules until it deploys. */
const realDeploy: DeployFn = async (req, report, opts) =>
  (await import('./local-target.ts')).deployLocally(req, report, opts);

export interface AgentRunnerOptions {
  stateDir: string;
  deploy?: DeployFn;
  logger?: Logger;
  clock?: Clock;
  /** Long-poll hold requested from the hub (it may cap it). */
  longPollSeconds?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Default: read from `<stateDir>/agent.json` + `agent-key.pem`. */
  identity?: AgentIdentity;
  /** Hub URLs to use instead of those enrolled (`agent run --hub URL1,URL2`), in order of preference. */
  hubs?: string[];
  /** Several hubs: how long to stay on a later hub before checking the first again (default 60 s). */
  hubReturnAfterMs?: number;
}

const BATCH = 100;
/** How long after a reload the agent probes its targets (the server's new workers need a moment). */
const AFTER_RELOAD_PROBE_MS = 250;

/**
 * `certfleet agent run`: starts from the local state (so a hub outage never removes anything and a restart with
 * the hub down is fine), holds the long-poll, fetches and opens bundles it lacks, runs the deploy pipeline for
 * every subscription whose desired version it has not yet deployed, and sends every transition to the hub through
 * an on-disk queue.
 *
 * Events: `connected`, `disconnected` (error), `state` (DesiredState), `deployed` ({subscriptionId, versionId,
 * outcome}), `flushed` (number of reports that left the queue: accepted, or refused for good and kept aside),
 * `probed` (number of probe results the hub accepted, see agent-prober.ts).
 */
export class AgentRunner extends EventEmitter {
  private readonly store: AgentStateStore;
  private readonly deploy: DeployFn;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  private identity?: AgentIdentity;
  private client?: AgentClient;
  private local: AgentLocalState = { deployed: {} };
  private queue: AgentReport[] = [];
  private latest?: DesiredState;
  private reconciling?: Promise<void>;
  private reconcileAgain = false;
  private flushing?: Promise<void>;
  private flushAgain = false;
  private persistChain: Promise<void> = Promise.resolve();
  private readonly recovered = new Set<string>();
  /** Bundles the hub inlined in the desired state, until saved to the local store by `bundleFor`. */
  private readonly inlined = new Map<string, BundleResponse>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly retry: Backoff;
  private subscriber?: Promise<void>;
  private prober?: AgentProber;
  connected = false;

  constructor(private readonly opts: AgentRunnerOptions) {
    super();
    this.store = new AgentStateStore(opts.stateDir);
    this.deploy = opts.deploy ?? realDeploy;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? createLogger();
    this.retry = new Backoff(opts.backoffMinMs ?? 500, opts.backoffMaxMs ?? 30_000);
  }

  get endpointId(): string | undefined {
    return this.identity?.endpointId;
  }

  /** Loads identity and local state, deploys from the local state if needed, then subscribes; returns at once. */
  async start(): Promise<void> {
    this.identity = this.opts.identity ?? (await loadIdentity(this.opts.stateDir));
    // Listing the versions held asks the hub to inline the bundles of the others in the long-poll answer.
    const hubs = this.opts.hubs ?? this.identity.hubs ?? [this.identity.hub];
    this.client = new AgentClient(hubs, this.identity.caPem, this.identity, {
      heldVersions: () => [
        ...new Set([...Object.values(this.local.deployed).map((r) => r.versionId), ...this.inlined.keys()]),
      ],
      ...(this.opts.hubReturnAfterMs !== undefined ? { returnAfterMs: this.opts.hubReturnAfterMs } : {}),
      onHubChange: ({ from, to, reason }) => {
        this.logger.warn({ from_hub: from, to_hub: to, reason }, `switching from hub ${from} to ${to}`);
        this.emit('hub', to);
      },
    });
    this.local = await this.store.load();
    this.queue = await this.loadQueue();
    this.prober = new AgentProber({
      client: () => this.client,
      caPem: this.identity.caPem,
      logger: this.logger,
      signal: this.abort.signal,
      onReported: (count) => this.emit('probed', count),
    });
    this.logger.info(
      {
        endpoint: this.identity.endpointName,
        hubs,
        cached_subscriptions: this.local.desired?.subscriptions.length ?? 0,
        queued_reports: this.queue.length,
      },
      'agent starting',
    );
    // Complete or undo file writes a crash interrupted, for every known subscription at once (a journal in one
    // directory may name files in another), before anything reads or rewrites those outputs.
    const known = this.local.desired?.subscriptions ?? [];
    await this.recoverWrites(known.flatMap((s) => outputDirs(s.spec)));
    for (const s of known) this.recovered.add(s.subscriptionId);
    // Whatever the hub says later, what was deployed stays; finish anything left undone before a restart.
    if (this.local.desired) this.setDesired(this.local.desired);
    this.subscriber = subscribeDesiredState(this.client, {
      signal: this.abort.signal,
      longPollSeconds: this.opts.longPollSeconds ?? 25,
      backoff: new Backoff(this.opts.backoffMinMs ?? 500, this.opts.backoffMaxMs ?? 30_000),
      logger: this.logger,
      onConnection: (up, err) => {
        this.connected = up;
        if (up) {
          this.logger.info({ hub: this.client!.hub }, 'connected to hub');
          this.emit('connected');
          void this.flush();
        } else {
          this.emit('disconnected', err);
        }
      },
      onState: (state) => {
        this.emit('state', state);
        this.setDesired(this.takeInlinedBundles(state));
      },
    });
  }

  /** The on-disk report queue; a corrupted one is set aside (kept for the operator) and logged, never dropped. */
  private async loadQueue(): Promise<AgentReport[]> {
    try {
      return await this.store.pendingReports();
    } catch (e) {
      if (!(e instanceof CorruptFileError)) throw e;
      const keptAs = await this.store.setAside(e.path, this.clock.now());
      this.logger.error(
        { file: e.path, kept_as: keptAs, err_message: e.message, hint: e.hint },
        'queued reports file is corrupted; set aside, its reports were not sent',
      );
      return [];
    }
  }

  /** Stops polling and timers, waits for a running deploy to finish, persists state. */
  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of this.timers) clearTimeout(t);
    await this.subscriber?.catch(() => {});
    await this.reconciling?.catch(() => {});
    await this.flushing?.catch(() => {});
    await this.prober?.idle();
    await this.persistChain;
    this.client?.close();
  }

  /** Resolves when no reconcile is running and no report is queued (for tests). */
  async idle(): Promise<void> {
    while (this.reconciling || this.flushing) {
      await this.reconciling;
      await this.flushing;
    }
  }

  get pendingReports(): number {
    return this.queue.length;
  }

  private setDesired(state: DesiredState): void {
    this.latest = state;
    this.prober?.update(state.probes);
    this.kickReconcile();
  }

  private kickReconcile(): void {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = (async () => {
      do {
        this.reconcileAgain = false;
        if (this.latest && !this.abort.signal.aborted) await this.reconcile(this.latest);
      } while (this.reconcileAgain && !this.abort.signal.aborted);
    })()
      .catch((e) => this.logger.error({ err_message: errorMessage(e) }, 'reconcile failed'))
      .finally(() => (this.reconciling = undefined));
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        if (!this.abort.signal.aborted) fn();
      },
      Math.min(Math.max(ms, 0), 2 ** 31 - 1),
    );
    this.timers.add(t);
  }

  private async reconcile(desired: DesiredState): Promise<void> {
    this.local.desired = desired;
    await this.saveLocal();
    for (const sub of desired.subscriptions) {
      if (this.abort.signal.aborted) return;
      const v = sub.version;
      if (!v) continue;
      const rec = this.local.deployed[sub.subscriptionId];
      const redeploy = this.pendingRedeploy(sub);
      if (rec?.versionId === v.id && !redeploy) {
        if (rec.state !== 'waiting_window') continue;
        const at = rec.nextWindowAt ? new Date(rec.nextWindowAt).getTime() : 0;
        if (at > this.clock.now().getTime()) {
          this.later(at - this.clock.now().getTime(), () => this.kickReconcile());
          continue;
        }
      }
      await this.deployOne(sub, desired, redeploy);
    }
    const keep = new Set<string>();
    for (const s of desired.subscriptions) if (s.version) keep.add(s.version.id);
    for (const r of Object.values(this.local.deployed)) keep.add(r.versionId);
    for (const id of this.inlined.keys()) if (!keep.has(id)) this.inlined.delete(id);
    await this.store.pruneBundles(keep);
  }

  /**
   * The manual deploy request (`certfleet deploy [--now]`) this agent has not acted on yet. A request made before
   * the agent knew the subscription (no deploy recorded: new agent, lost state) is marked seen, not replayed, so
   * an old `--now` never overrides a change window on a reinstalled endpoint; its version deploys as usual.
   */
  private pendingRedeploy(sub: DesiredSubscription): DesiredSubscription['redeploy'] {
    const r = sub.redeploy;
    const seen = (this.local.redeployed ??= {});
    if (!r || seen[sub.subscriptionId] === r.token) return undefined;
    if (!this.local.deployed[sub.subscriptionId]) {
      seen[sub.subscriptionId] = r.token;
      return undefined;
    }
    return r;
  }

  /** Keeps inlined bundles aside (validated and saved when deployed) and returns the state without them. */
  private takeInlinedBundles(state: DesiredState): DesiredState {
    if (!state.subscriptions.some((s) => s.bundle)) return state;
    return {
      ...state,
      subscriptions: state.subscriptions.map(({ bundle, ...sub }) => {
        if (bundle && sub.version && bundle.versionId === sub.version.id)
          this.inlined.set(bundle.versionId, bundle);
        return sub;
      }),
    };
  }

  /** A cached bundle; a corrupted one is set aside and logged, and the bundle is fetched from the hub again. */
  private async cachedBundle(versionId: string): Promise<BundleResponse | undefined> {
    try {
      return await this.store.loadBundle(versionId);
    } catch (e) {
      if (!(e instanceof CorruptFileError)) throw e;
      const keptAs = await this.store.setAside(e.path, this.clock.now());
      this.logger.error(
        { file: e.path, kept_as: keptAs, version_id: versionId, err_message: e.message },
        'cached bundle is corrupted; set aside, fetching it from the hub again',
      );
      return undefined;
    }
  }

  private async bundleFor(sub: DesiredSubscription): Promise<BundleResponse | undefined> {
    const v = sub.version!;
    const cached = await this.cachedBundle(v.id);
    if (cached) return cached;
    if (!this.client) return undefined;
    const inlined = this.inlined.get(v.id);
    this.inlined.delete(v.id);
    try {
      const bundle = inlined ?? (await this.client.bundle(v.id, { signal: this.abort.signal }));
      if (bundle.versionId !== v.id || bundle.fingerprint !== v.fingerprint) {
        throw new Error(`hub sent version ${bundle.versionId} (${bundle.fingerprint}) for ${v.id}`);
      }
      await this.store.saveBundle(bundle);
      return bundle;
    } catch (e) {
      if (this.abort.signal.aborted) return undefined;
      const delay = this.retry.next();
      this.logger.warn(
        {
          certificate: sub.certificateName,
          version_id: v.id,
          err_message: errorMessage(e),
          retry_in_ms: delay,
        },
        'bundle fetch failed',
      );
      if (isTransient(e)) this.later(delay, () => this.kickReconcile());
      else await this.record(sub, 'failed', `bundle refused by the hub: ${errorMessage(e)}`);
      return undefined;
    }
  }

  private async deployOne(
    sub: DesiredSubscription,
    desired: DesiredState,
    redeploy?: DesiredSubscription['redeploy'],
  ): Promise<void> {
    const v = sub.version!;
    const bundle = await this.bundleFor(sub);
    if (!bundle) return;
    this.retry.reset();
    // Acted on once, whatever the outcome (saved with the deploy record below).
    if (redeploy) (this.local.redeployed ??= {})[sub.subscriptionId] = redeploy.token;
    let keyPem: string;
    try {
      keyPem = openSealedKey(bundle.sealedKey, this.identity!.keys.sealing, desired.endpointId, v.id);
    } catch (e) {
      await this.record(sub, 'failed', errorMessage(e));
      return;
    }
    const report: DeployReporter = (r) =>
      this.enqueue({ subscriptionId: sub.subscriptionId, versionId: v.id, ...r });
    if (this.local.deployed[sub.subscriptionId]?.versionId !== v.id) {
      await report({ state: 'delivered', at: this.clock.now().toISOString() });
    }
    if (!this.recovered.has(sub.subscriptionId)) {
      // A subscription first seen now: sweep its directories before touching them.
      await this.recoverWrites(outputDirs(sub.spec));
      this.recovered.add(sub.subscriptionId);
    }
    const req: DeployRequest = {
      certificateName: sub.certificateName,
      sans: sub.sans,
      versionId: v.id,
      fingerprint: v.fingerprint,
      bundle: { certPem: bundle.certPem, chainPems: bundle.chainPems, keyPem },
      subscription: { id: sub.subscriptionId, ...sub.spec },
      ...(redeploy ? { redeploy: true, overrideWindow: redeploy.overrideWindow } : {}),
    };
    let outcome: DeployOutcome;
    try {
      outcome = await this.deploy(req, report, {
        stateDir: this.opts.stateDir,
        clock: this.clock,
        signal: this.abort.signal,
      });
    } catch (e) {
      outcome = { state: 'failed', reason: `deploy failed: ${errorMessage(e)}` };
      await report({ state: 'failed', reason: outcome.reason!, at: this.clock.now().toISOString() });
    }
    this.local.deployed[sub.subscriptionId] = {
      versionId: v.id,
      state: outcome.state,
      at: this.clock.now().toISOString(),
      ...(outcome.nextWindowAt ? { nextWindowAt: outcome.nextWindowAt } : {}),
    };
    await this.saveLocal();
    this.logger.info(
      {
        certificate: sub.certificateName,
        version_id: v.id,
        state: outcome.state,
        ...(redeploy ? { redeploy: true, override_window: redeploy.overrideWindow } : {}),
      },
      'deployment finished',
    );
    this.emit('deployed', { subscriptionId: sub.subscriptionId, versionId: v.id, outcome });
    // the hub judges targets it cannot reach on this agent's probes: show it the reload at once
    if (outcome.state === 'reloaded' || outcome.state === 'verified')
      this.prober?.probeSoon(AFTER_RELOAD_PROBE_MS);
    if (outcome.state === 'waiting_window' && outcome.nextWindowAt) {
      this.later(new Date(outcome.nextWindowAt).getTime() - this.clock.now().getTime(), () =>
        this.kickReconcile(),
      );
    }
  }

  /** Sweeps interrupted writes; a directory that cannot be swept is logged, and the deploy's own write reports it. */
  private async recoverWrites(dirs: string[]): Promise<void> {
    const unique = [...new Set(dirs)];
    if (unique.length === 0) return;
    try {
      const r = await recoverPendingWrites(unique, { signal: this.abort.signal });
      if (r.replayed || r.removedTemps)
        this.logger.warn({ dirs: unique, ...r }, 'recovered interrupted writes');
    } catch (e) {
      this.logger.error({ dirs: unique, error: errorMessage(e) }, 'could not recover interrupted writes');
    }
  }

  /** Records a terminal state reached without the pipeline (bundle refused, key would not open). */
  private async record(sub: DesiredSubscription, state: 'failed', reason: string): Promise<void> {
    const v = sub.version!;
    await this.enqueue({
      subscriptionId: sub.subscriptionId,
      versionId: v.id,
      state,
      reason,
      at: this.clock.now().toISOString(),
    });
    this.local.deployed[sub.subscriptionId] = { versionId: v.id, state, at: this.clock.now().toISOString() };
    await this.saveLocal();
    this.emit('deployed', {
      subscriptionId: sub.subscriptionId,
      versionId: v.id,
      outcome: { state, reason },
    });
  }

  private saveLocal(): Promise<void> {
    const snapshot = JSON.parse(JSON.stringify(this.local)) as AgentLocalState;
    return this.persist(() => this.store.save(snapshot));
  }

  private persist(write: () => Promise<void>): Promise<void> {
    const next = this.persistChain.then(write, write);
    this.persistChain = next.catch((e) =>
      this.logger.error({ err_message: errorMessage(e) }, 'state write failed'),
    );
    return next;
  }

  /** Every transition is on disk before the pipeline continues; sending happens in the background. */
  private async enqueue(report: AgentReport): Promise<void> {
    this.queue.push(report);
    const snapshot = [...this.queue];
    await this.persist(() => this.store.savePendingReports(snapshot));
    void this.flush();
  }

  private flush(): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      do {
        this.flushAgain = false;
        await this.flushOnce();
      } while (this.flushAgain && this.queue.length && this.connected && !this.abort.signal.aborted);
    })().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /**
   * Sends the queue's head in batches. A report leaves the queue only when the hub accepted it or refused it for
   * good (4xx; then it is logged and kept in `reports-refused.jsonl`). When a batch is refused, its reports go one
   * by one so one bad report does not hold back the others; a transient error (hub unreachable, 5xx) at any
   * point stops the flush and keeps every report not yet settled, in order, for the next try.
   */
  private async flushOnce(): Promise<void> {
    while (this.queue.length && this.client && !this.abort.signal.aborted) {
      const batch = this.queue.slice(0, BATCH);
      const refused: RefusedReport[] = [];
      let settled = 0;
      let interrupted = false;
      try {
        await this.client.report(batch, { signal: this.abort.signal });
        settled = batch.length;
      } catch (e) {
        if (this.abort.signal.aborted || isTransient(e)) {
          interrupted = true;
        } else if (batch.length === 1) {
          refused.push(this.refusal(batch[0], e));
          settled = 1;
        } else {
          for (const r of batch) {
            try {
              await this.client.report([r], { signal: this.abort.signal });
            } catch (err) {
              if (this.abort.signal.aborted || isTransient(err)) {
                interrupted = true;
                break;
              }
              refused.push(this.refusal(r, err));
            }
            settled++;
          }
        }
      }
      if (settled) await this.settle(settled, refused);
      if (interrupted) {
        // Stays queued: flushed on reconnect, with the next report, or by this retry while the poll is fine.
        if (this.connected && !this.abort.signal.aborted) this.later(2000, () => void this.flush());
        return;
      }
    }
  }

  private refusal(report: AgentReport, e: unknown): RefusedReport {
    return { refusedAt: this.clock.now().toISOString(), error: errorMessage(e), report };
  }

  /** Removes the first `count` reports (sent or refused) from the queue; refused ones are kept aside first. */
  private async settle(count: number, refused: RefusedReport[]): Promise<void> {
    if (refused.length) {
      const keptIn = await this.store.keepRefusedReports(refused).catch((e) => {
        this.logger.error({ err_message: errorMessage(e) }, 'could not keep refused reports');
        return undefined;
      });
      for (const r of refused) {
        this.logger.warn(
          {
            err_message: r.error,
            subscription_id: r.report.subscriptionId,
            version_id: r.report.versionId,
            state: r.report.state,
            kept_in: keptIn,
          },
          'hub refused a report; removed from the queue',
        );
      }
    }
    this.queue.splice(0, count);
    const snapshot = [...this.queue];
    await this.persist(() => this.store.savePendingReports(snapshot));
    this.emit('flushed', count);
  }
}

/** `certfleet agent run` until the signal aborts. */
export async function runAgent(opts: AgentRunnerOptions & { signal: AbortSignal }): Promise<void> {
  const runner = new AgentRunner(opts);
  await runner.start();
  await new Promise<void>((resolve) =>
    opts.signal.addEventListener('abort', () => resolve(), { once: true }),
  );
  await runner.stop();
}

export type { DeployReport };
