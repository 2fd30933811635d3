/**
 * The hub's Prometheus metrics: one registry per hub instance (never prom-client's global one, so two hubs in
 * one process — tests — never mix). Counters and histograms are fed by the code that does the work (probe
 * service, instrumented issuers, the store's post-commit events); gauges are read from the store at scrape time,
 * so they are right on every hub of a cluster, not only on the leader.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DEPLOYMENT_STATES } from '../core/types.ts';
import type { HubContext } from '../hub/hub-context.ts';
import { META } from '../store/meta-catalogue.ts';
import type { EndpointRow, FleetRow, ProbeResultRecord } from '../store/store.ts';
import { CERTFLEET_VERSION } from './version.ts';

/** What a probe service tells metrics about served certificates: one row per certificate × endpoint. */
export interface ServedRow {
  certificate: string;
  endpoint: string;
  /** Earliest notAfter served on the endpoint's targets for this certificate. */
  notAfter?: string;
  /** Earliest notBefore served there: with notAfter, the served certificate's lifetime. */
  notBefore?: string;
}

export interface ChannelDeliveryStats {
  kind: string;
  delivered: number;
  failed: number;
}

export interface MetricsSources {
  served?: () => Promise<ServedRow[]>;
  alertChannels?: () => Record<string, ChannelDeliveryStats>;
  /** When each certificate is due for renewal (the planner's calendar, budget deferrals included). */
  renewalDue?: () => Promise<Array<{ certificate: string; dueAt: Date }>>;
  /** Whether this hub leads its cluster (always on SQLite). */
  leader?: () => boolean;
}

const seconds = (iso: string): number => Date.parse(iso) / 1000;

export class HubMetrics {
  readonly registry = new Registry();
  readonly probes: Counter<'result' | 'source'>;
  readonly probeDuration: Histogram<'result' | 'source'>;
  readonly issuance: Counter<'issuer' | 'result'>;
  readonly issuanceDuration: Histogram<'issuer' | 'result'>;
  readonly transitions: Counter<'state'>;
  readonly backupFailures: Counter;
  private sources: MetricsSources = {};
  private readonly unsubscribe: () => void;
  /** One read of each kind per scrape, shared by the gauges that need it (reset by `text()`). */
  private scrape: {
    fleet?: Promise<FleetRow[]>;
    endpoints?: Promise<EndpointRow[]>;
    probes?: Promise<ProbeResultRecord[]>;
  } = {};

  constructor(ctx: HubContext) {
    const registers = [this.registry];
    const sources = () => this.sources;
    const store = ctx.store;
    const fleet = () => (this.scrape.fleet ??= store.fleet().then((p) => p.items));
    const endpoints = () => (this.scrape.endpoints ??= store.endpointRows().then((p) => p.items));
    /** The latest probe of every endpoint target, named by its endpoint. */
    const probes = async () => {
      const names = new Map((await endpoints()).map((r) => [r.endpoint.id, r.endpoint.name]));
      const results = await (this.scrape.probes ??= store.listProbeResults());
      return results.map((probe) => ({ endpoint: names.get(probe.endpointId) ?? probe.endpointId, probe }));
    };

    // Process and Node.js runtime metrics under their conventional names (process_*, nodejs_*), less the three
    // gauges prom-client names with a counter's `_total` suffix (promtool rejects them; the per-type
    // nodejs_active_handles / _requests / _resources gauges carry the same counts).
    collectDefaultMetrics({ register: this.registry });
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ])
      this.registry.removeSingleMetric(name);
    new Gauge({
      name: 'certfleet_build_info',
      help: 'Always 1; the labels name the certfleet version and the Node.js version running it',
      labelNames: ['version', 'node'],
      registers,
    }).set({ version: CERTFLEET_VERSION, node: process.version }, 1);

    this.probes = new Counter({
      name: 'certfleet_probes_total',
      help: 'TLS probes by result (ok or the error kind) and where they were taken (hub, or agent: reported by agents)',
      labelNames: ['result', 'source'],
      registers,
    });
    this.probeDuration = new Histogram({
      name: 'certfleet_probe_duration_seconds',
      help: 'Duration of one probe (TCP connect, STARTTLS and TLS handshake), by result and source (hub or agent)',
      labelNames: ['result', 'source'],
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
      name: 'certfleet_served_not_before_timestamp_seconds',
      help: 'notBefore of the certificate a probe saw served, per certificate and endpoint (earliest over targets)',
      labelNames: ['certificate', 'endpoint'],
      registers,
      async collect() {
        this.reset();
        for (const r of (await sources().served?.()) ?? []) {
          if (r.notBefore)
            this.set({ certificate: r.certificate, endpoint: r.endpoint }, seconds(r.notBefore));
        }
      },
    });
    new Gauge({
      name: 'certfleet_probe_success',
      help: "1 when the latest probe of an endpoint's target succeeded (trusted, in date, name matches), else 0",
      labelNames: ['endpoint', 'target', 'source'],
      registers,
      async collect() {
        this.reset();
        for (const { endpoint, probe } of await probes()) {
          this.set(
            { endpoint, target: probe.targetKey, source: sourceLabel(probe.source) },
            probe.ok ? 1 : 0,
          );
        }
      },
    });
    new Gauge({
      name: 'certfleet_served_certificate_info',
      help: 'Always 1: the leaf certificate each endpoint target served at its latest probe (one series per target)',
      labelNames: ['endpoint', 'target', 'source', 'fingerprint', 'serial', 'not_after'],
      registers,
      async collect() {
        this.reset();
        for (const { endpoint, probe } of await probes()) {
          if (!probe.fingerprint) continue;
          this.set(
            {
              endpoint,
              target: probe.targetKey,
              source: sourceLabel(probe.source),
              fingerprint: probe.fingerprint,
              serial: probe.serial ?? '',
              not_after: probe.notAfter ?? '',
            },
            1,
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
      name: 'certfleet_certificate_not_before_timestamp_seconds',
      help: "notBefore of each certificate's current version (with not_after: its lifetime)",
      labelNames: ['certificate'],
      registers,
      async collect() {
        this.reset();
        for (const r of await fleet()) {
          if (r.current) this.set({ certificate: r.certificate.name }, seconds(r.current.notBefore));
        }
      },
    });
    new Gauge({
      name: 'certfleet_certificate_renewal_due_timestamp_seconds',
      help: 'When the planner will renew each certificate (ARI window or share of lifetime, after budget deferrals)',
      labelNames: ['certificate'],
      registers,
      async collect() {
        this.reset();
        for (const r of (await sources().renewalDue?.()) ?? []) {
          this.set({ certificate: r.certificate }, r.dueAt.getTime() / 1000);
        }
      },
    });
    new Gauge({
      name: 'certfleet_deployment_state',
      help: "1 for the state of each subscription's current-version deployment (pending until first reported)",
      labelNames: ['certificate', 'endpoint', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const r of await fleet()) {
          if (!r.current) continue;
          const state = r.deployment?.state ?? 'pending';
          this.set({ certificate: r.certificate.name, endpoint: r.endpoint.name, state }, 1);
        }
      },
    });
    new Gauge({
      name: 'certfleet_agent_last_seen_timestamp_seconds',
      help: 'When the agent of each agent endpoint last made a signed request (absent: never)',
      labelNames: ['endpoint'],
      registers,
      async collect() {
        this.reset();
        for (const r of await endpoints()) {
          if (r.endpoint.kind === 'agent' && r.lastSeenAt)
            this.set({ endpoint: r.endpoint.name }, seconds(r.lastSeenAt));
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

  /** Records one probe result (`seconds` = its handshake time when known) taken by the hub or reported by an agent. */
  observeProbe(result: string, seconds?: number, source: 'hub' | 'agent' = 'hub'): void {
    this.probes.inc({ result, source });
    if (seconds !== undefined) this.probeDuration.observe({ result, source }, seconds);
  }

  text(): Promise<string> {
    this.scrape = {};
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** `hub` or `agent`: the endpoint label already names which agent, so the label stays low-cardinality. */
function sourceLabel(source: string): 'hub' | 'agent' {
  return source === 'hub' ? 'hub' : 'agent';
}
