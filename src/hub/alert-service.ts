/**
 * Alerting on the hub: reads the store, asks the pure condition functions (src/notify/conditions.ts) what should
 * be firing, and hands the union to the AlertManager (de-duplication, escalation, resolve messages, retries).
 * The manager's state is saved in store meta after every evaluation, so a restart neither re-sends nor forgets.
 */
import { z } from 'zod';
import { errorMessage } from '../core/errors.ts';
import {
  AlertManager,
  agentSilentAlerts,
  backupAlerts,
  createNotifierRegistry,
  deadMansSwitchAlert,
  deploymentAlerts,
  expiryAlerts,
  renewalFailureAlerts,
  type Alert,
  type DeliveryResult,
  type EvaluateResult,
  type NotifierRegistry,
} from '../notify/index.ts';
import { META } from '../store/meta-catalogue.ts';
import type { RenewalState } from './renewal/renewal-state.ts';
import type { HubContext } from './hub-context.ts';
import { windowEndFor } from './probe-judgement.ts';
import type { ProbeService } from './probe-service.ts';

/** The `alerts:` section of the hub config. Channel entries are validated by the notifier registry. */
export const alertsHubConfigShape = {
  alerts: z
    .strictObject({
      /** Evaluate and notify on a loop even without channels (events and `certfleet alerts list` only). */
      enabled: z.boolean().optional(),
      channels: z.array(z.looseObject({ kind: z.string(), name: z.string().optional() })).default([]),
      agentSilentAfterMinutes: z.number().positive().default(30),
      deadMansSwitchMinutes: z.number().positive().default(15),
      /** Send a still-firing alert again after this many hours (default: only on escalation). */
      renotifyAfterHours: z.number().positive().optional(),
      evaluateEverySeconds: z.number().int().min(1).max(3600).default(30),
    })
    .prefault({}),
};
export type AlertsConfig = z.output<(typeof alertsHubConfigShape)['alerts']>;

const ALERT_STATE_META = META.alertState.key;

export interface AlertServiceOptions {
  probes?: ProbeService;
  registry?: NotifierRegistry;
  /** Scheduled backups are configured: alert when none was verified for this long, or the last one failed. */
  backupMaxAgeMs?: number;
  /** Delivery retries (tests shorten them). */
  retry?: { attempts: number; baseDelayMs: number; maxDelayMs?: number };
}

export class AlertService {
  readonly manager: AlertManager;
  private readonly hubStartedAt: Date;
  private timer?: NodeJS.Timeout;
  private restored = false;
  private stopped = false;
  private running?: Promise<EvaluateResult>;
  private readonly abort = new AbortController();

  constructor(
    private readonly ctx: HubContext,
    readonly config: AlertsConfig,
    private readonly opts: AlertServiceOptions = {},
  ) {
    this.hubStartedAt = ctx.clock.now();
    const notifiers = (opts.registry ?? createNotifierRegistry()).createAll(
      config.channels,
      'alerts.channels',
    );
    this.manager = new AlertManager({
      notifiers,
      clock: ctx.clock,
      recordEvent: (e) =>
        ctx.store.appendEvent({ actor: 'alerts', kind: e.kind, subject: `alert:${e.subject}`, data: e.data }),
      ...(opts.retry ? { retry: opts.retry } : {}),
      ...(config.renotifyAfterHours ? { renotifyAfterMs: config.renotifyAfterHours * 3_600_000 } : {}),
      logger: ctx.logger,
    });
  }

  /** Whether the loop runs: with at least one channel, or `alerts.enabled: true`. */
  get looping(): boolean {
    return this.config.enabled ?? this.config.channels.length > 0;
  }

  start(): void {
    if (!this.looping || this.timer) return;
    this.stopped = false;
    // a hub that leads again reads the state the other leader left (which alerts it already sent)
    this.restored = false;
    const loop = (ms: number) => {
      this.timer = setTimeout(() => {
        void this.runOnce()
          .catch((e) => this.ctx.logger.error({ err: errorMessage(e) }, 'alert evaluation failed'))
          .finally(() => {
            if (!this.stopped) loop(this.config.evaluateEverySeconds * 1000);
          });
      }, ms);
      this.timer.unref();
    };
    // first evaluation one period after start: the planner and probes get a chance to run first
    loop(this.config.evaluateEverySeconds * 1000);
  }

  /** Stops the loop (this hub stopped leading); `start` resumes it. An evaluation under way finishes. */
  async pause(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** Hub shutdown: aborts deliveries in flight and releases the channels' connections. */
  async stop(): Promise<void> {
    this.abort.abort(new Error('hub stopping'));
    await this.pause();
    await this.manager.close();
  }

  /** One evaluation: compute what fires, notify changes, persist the manager state. Overlapping calls queue. */
  async runOnce(): Promise<EvaluateResult> {
    await this.restore();
    const firing = await this.firing();
    const run = this.manager.evaluate(firing, this.abort.signal);
    this.running = run;
    const result = await run;
    await this.ctx.store.setMeta(ALERT_STATE_META, JSON.stringify(this.manager.exportState()));
    return result;
  }

  /** Alerts firing now: the manager's view when the loop runs, else computed on demand (nothing is sent). */
  async list(): Promise<Alert[]> {
    if (this.looping) {
      await this.restore();
      return this.manager.activeAlerts();
    }
    return this.firing();
  }

  sendTest(signal?: AbortSignal): Promise<DeliveryResult[]> {
    return this.manager.sendTest(signal);
  }

  /** Every condition that should fire now, from the store. */
  async firing(): Promise<Alert[]> {
    const { store, clock } = this.ctx;
    const now = clock.now();
    // three one-query reads (no per-row lookups): certificates, the fleet read model, endpoints
    const [certs, fleet, endpoints] = await Promise.all([
      store.certificateRows().then((p) => p.items),
      store.fleet().then((p) => p.items),
      store.endpointRows().then((p) => p.items),
    ]);

    // expiry: each certificate's current version, plus older certificates still served somewhere
    const alerts: Alert[] = expiryAlerts(
      certs.flatMap(({ certificate: c, current: v }) =>
        v ? [{ name: c.name, notBefore: new Date(v.notBefore), notAfter: new Date(v.notAfter) }] : [],
      ),
      now,
    );
    for (const s of (await this.opts.probes?.servedSummary(fleet)) ?? []) {
      if (s.matchesCurrent || !s.notAfter || !s.notBefore) continue;
      for (const a of expiryAlerts(
        [{ name: s.certificate, notBefore: new Date(s.notBefore), notAfter: new Date(s.notAfter) }],
        now,
      )) {
        alerts.push({
          ...a,
          key: `expiring:served:${s.certificate}:${s.endpoint}`,
          title: `${a.title} (still served on endpoint ${s.endpoint})`,
          subject: { certificate: s.certificate, endpoint: s.endpoint },
          details: { ...a.details, servedFingerprint: s.fingerprint, endpoint: s.endpoint },
        });
      }
    }

    // renewal failures (renewal_state, written by the renewal service)
    const failing: Array<{ name: string; failures: number; lastError?: string; urgent: boolean }> = [];
    for (const { certificate: c, current: v, renewalState } of certs) {
      const state = renewalState as RenewalState;
      if (!state.failures?.count) continue;
      const urgent = v
        ? Date.parse(v.notAfter) - now.getTime() <= (Date.parse(v.notAfter) - Date.parse(v.notBefore)) / 6
        : true;
      failing.push({
        name: c.name,
        failures: state.failures.count,
        ...(state.failures.lastError ? { lastError: state.failures.lastError } : {}),
        urgent,
      });
    }
    alerts.push(...renewalFailureAlerts(failing, now));

    // deployments of current versions: failed, rolled back, diverged, window missed
    const rows = [];
    for (const { subscription: s, certificate: cert, endpoint, deployment: d } of fleet) {
      if (!d) continue;
      const windowEndsAt =
        d.state === 'waiting_window' && s.window ? windowEndFor(s.window, new Date(d.updatedAt)) : undefined;
      rows.push({
        certificate: cert.name,
        endpoint: endpoint.name,
        state: d.state,
        ...(d.reason ? { reason: d.reason } : {}),
        ...(windowEndsAt ? { windowEndsAt } : {}),
        updatedAt: new Date(d.updatedAt),
      });
    }
    alerts.push(...deploymentAlerts(rows, now));

    // agents that stopped checking in (enrolled ones; an endpoint never enrolled is not silent, just new)
    const agents = [];
    for (const { endpoint: e, lastSeenAt, enrolled } of endpoints) {
      if (e.kind !== 'agent' || !(enrolled || lastSeenAt !== undefined)) continue;
      agents.push({
        name: e.name,
        kind: e.kind,
        ...(lastSeenAt ? { lastSeenAt: new Date(lastSeenAt) } : { createdAt: new Date(e.createdAt) }),
      });
    }
    alerts.push(...agentSilentAlerts(agents, now, this.config.agentSilentAfterMinutes * 60_000));

    // dead man's switch on the planner
    const lastRun = await store.getMeta(META.plannerLastRun.key);
    const dms = deadMansSwitchAlert(
      lastRun ? new Date(lastRun) : undefined,
      now,
      this.config.deadMansSwitchMinutes * 60_000,
      this.hubStartedAt,
    );
    if (dms) alerts.push(dms);

    // dead man's switch on scheduled backups
    if (this.opts.backupMaxAgeMs !== undefined) {
      const [verified, failure] = await Promise.all([
        store.getMeta(META.backupLastVerified.key),
        store.getMeta(META.backupLastFailure.key),
      ]);
      const failed = failure ? (JSON.parse(failure) as { at: string; error: string }) : undefined;
      alerts.push(
        ...backupAlerts(
          {
            ...(verified ? { verifiedAt: new Date(verified) } : {}),
            ...(failed ? { failure: { at: new Date(failed.at), error: failed.error } } : {}),
          },
          now,
          this.opts.backupMaxAgeMs,
          this.hubStartedAt,
        ),
      );
    }
    return alerts;
  }

  private async restore(): Promise<void> {
    if (this.restored) return;
    this.restored = true;
    const saved = await this.ctx.store.getMeta(ALERT_STATE_META);
    if (!saved) return;
    try {
      this.manager.importState(JSON.parse(saved));
    } catch (e) {
      this.ctx.logger.warn({ err: errorMessage(e) }, 'saved alert state ignored; firing alerts notify again');
    }
  }
}
