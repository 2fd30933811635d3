/**
 * The hub's Prometheus metrics: one registry per hub instance (never prom-client's global one, so two hubs in
 * one process — tests — never mix). Counters and histograms are fed by the code that does the work (probe
 * service, instrumented issuers, the store's post-commit events); gauges are read from the store at scrape time,
 * so they are right on every hub of a cluster, not only on the leader.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DEPLOYMENT_STATES } from '../core/types.ts';
import type { HubContext } from '../hub/hub-context.ts';
import { META } from '../store/meta-catalogue.ts';

const DAY_S = 86_400;

/** What a probe service tells metrics about served certificates: one row per certificate × endpoint. */
export interface ServedRow {
  certificate: string;
  endpoint: string;
  /** Earliest notAfter served on the endpoint's targets for this certificate. */
  notAfter?: string;
}

export interface ChannelDeliveryStats {
  kind: string;
  delivered: number;
  failed: number;
}

export interface MetricsSources {
  served?: () => Promise<ServedRow[]>;
  alertChannels?: () => Record<string, ChannelDeliveryStats>;
  /** Whether this hub leads its cluster (always on SQLite). */
  leader?: () => boolean;
}

export class HubMetrics {
  readonly registry = new Registry();
  readonly probes: Counter<'result'>;
  readonly probeDuration: Histogram<'result'>;
  readonly issuance: Counter<'issuer' | 'result'>;
  readonly issuanceDuration: Histogram<'issuer' | 'result'>;
  readonly transitions: Counter<'state'>;
  readonly backupFailures: Counter;
  private sources: MetricsSources = {};
  private readonly unsubscribe: () => void;

  constructor(ctx: HubContext) {
    const registers = [this.registry];
    const sources = () => this.sources;
    const store = ctx.store;
    const clock = ctx.clock;

    this.probes = new Counter({
      name: 'certfleet_probes_total',
      help: 'TLS probes run by the hub, by result (ok or the error kind)',
      labelNames: ['result'],
      registers,
    });
    this.probeDuration = new Histogram({
      name: 'certfleet_probe_duration_seconds',
      help: 'Duration of one probe (TCP connect, STARTTLS and TLS handshake)',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.issuance = new Counter({
      name: 'certfleet_issuance_total',
      help: 'Certificate issuances (new versions, renewals included) by issuer and result',
      labelNames: ['issuer', 'result'],
      registers,
    });
    this.issuanceDuration = new Histogram({
      name: 'certfleet_issuance_duration_seconds',
      help: 'Time an issuer took to return a certificate (ACME order to download, or internal CA signing)',
      labelNames: ['issuer', 'result'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });

    this.transitions = new Counter({
      name: 'certfleet_deployment_transitions_total',
      help: 'Deployment transitions committed through this hub since it started, by the state moved to',
      labelNames: ['state'],
      registers,
    });
    this.unsubscribe = ctx.store.events.on('deployment.transitioned', ({ deployment }, origin) => {
      if (origin === 'local') this.transitions.inc({ state: deployment.state });
    });

    new Gauge({
      name: 'certfleet_leader',
      help: 'Whether this hub leads (1: runs the planner, probes, alerts, backups and connectors) or not (0)',
      registers,
      collect() {
        this.set(sources().leader?.() === false ? 0 : 1);
      },
    });
    new Gauge({
      name: 'certfleet_served_not_after_timestamp_seconds',
      help: 'notAfter of the certificate a probe saw served, per certificate and endpoint (earliest over targets)',
      labelNames: ['certificate', 'endpoint'],
      registers,
      async collect() {
        this.reset();
        for (const r of (await sources().served?.()) ?? []) {
          if (r.notAfter)
            this.set({ certificate: r.certificate, endpoint: r.endpoint }, Date.parse(r.notAfter) / 1000);
        }
      },
    });
    new Gauge({
      name: 'certfleet_served_days_left',
      help: 'Days until the served certificate expires, per certificate and endpoint (negative once expired)',
      labelNames: ['certificate', 'endpoint'],
      registers,
      async collect() {
        this.reset();
        const now = clock.now().getTime();
        for (const r of (await sources().served?.()) ?? []) {
          if (r.notAfter)
            this.set(
              { certificate: r.certificate, endpoint: r.endpoint },
              Math.round(((Date.parse(r.notAfter) - now) / 1000 / DAY_S) * 100) / 100,
            );
        }
      },
    });
    new Gauge({
      name: 'certfleet_certificate_not_after_timestamp_seconds',
      help: "notAfter of each certificate's current version",
      labelNames: ['certificate'],
      registers,
      async collect() {
        this.reset();
        for (const c of await store.listCertificates()) {
          const v = await store.currentVersion(c.id);
          if (v) this.set({ certificate: c.name }, Date.parse(v.notAfter) / 1000);
        }
      },
    });
    new Gauge({
      name: 'certfleet_deployments',
      help: "Deployments of each subscription's current version, by state",
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = new Map<string, number>(DEPLOYMENT_STATES.map((s) => [s, 0]));
        const certs = await store.listCertificates();
        const current = new Map<string, string | undefined>();
        for (const c of certs) current.set(c.id, (await store.currentVersion(c.id))?.id);
        for (const s of await store.listSubscriptions()) {
          const v = current.get(s.certificateId);
          if (!v) continue;
          const d = await store.getDeployment(s.id, v);
          const state = d?.state ?? 'pending';
          counts.set(state, (counts.get(state) ?? 0) + 1);
        }
        this.reset();
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'certfleet_planner_last_run_timestamp_seconds',
      help: 'When the renewal planner last completed a run (0: never)',
      registers,
      async collect() {
        const at = await store.getMeta(META.plannerLastRun.key);
        this.set(at ? Date.parse(at) / 1000 : 0);
      },
    });
    new Gauge({
      name: 'certfleet_backup_last_verified_timestamp_seconds',
      help: 'When the last scheduled backup was written and verified by restoring it (0: never)',
      registers,
      async collect() {
        const at = await store.getMeta(META.backupLastVerified.key);
        this.set(at ? Date.parse(at) / 1000 : 0);
      },
    });
    this.backupFailures = new Counter({
      name: 'certfleet_backup_failures_total',
      help: 'Scheduled backups that failed to write or to verify since the hub started',
      registers,
    });
    new Counter({
      name: 'certfleet_alert_deliveries_total',
      help: 'Alert messages delivered to (or failed on, after retries) each channel since the hub started',
      labelNames: ['channel', 'result'],
      registers,
      collect() {
        this.reset();
        for (const [channel, s] of Object.entries(sources().alertChannels?.() ?? {})) {
          this.inc({ channel, result: 'delivered' }, s.delivered);
          this.inc({ channel, result: 'failed' }, s.failed);
        }
      },
    });
  }

  /** Late binding: the probe and alert services are built after the metrics they feed. */
  attach(sources: MetricsSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** Stops following the store's events (hub shutdown). */
  close(): void {
    this.unsubscribe();
  }

  /** Records one probe result (`seconds` = its handshake time when known). */
  observeProbe(result: string, seconds?: number): void {
    this.probes.inc({ result });
    if (seconds !== undefined) this.probeDuration.observe({ result }, seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
