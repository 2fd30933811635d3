/**
 * The hub's alert rules (the pure conditions of src/notify/conditions.ts, as AlertService feeds them) evaluated
 * per endpoint on the simulated clock, whenever something about that endpoint changes or a threshold passes.
 * Records when each alert starts firing, how much of the served certificate's lifetime was left then, and which
 * fault (if any) it answers to.
 */
import type { Alert, AlertKind } from '../notify/alert.ts';
import {
  agentSilentAlerts,
  deploymentAlerts,
  expiryAlerts,
  renewalFailureAlerts,
} from '../notify/conditions.ts';
import type { DeploymentState } from '../core/types.ts';
import { answersTo, type AlertSpan } from './fault-alerts.ts';
import type { FaultInstance } from './fault-plan.ts';
import type { Served } from './sim-endpoint.ts';

/** The hub's default `alerts.agentSilentAfterMinutes`. */
export const AGENT_SILENT_AFTER_MS = 30 * 60_000;

/** What the hub knows about one endpoint and its certificate, as the alert rules read it. */
export interface EndpointFacts {
  certificate: string;
  endpoint: string;
  current?: Served;
  served?: Served;
  failures: number;
  deployment?: { state: DeploymentState; reason?: string; updatedAt: number };
  /** Set while the agent is silent: when it last checked in. */
  silentSince?: number;
}

export interface AlertFiring {
  at: string;
  kind: AlertKind;
  severity: string;
  endpoint: string;
  title: string;
  /** Share of the served certificate's lifetime left when the alert started firing. */
  fractionLeft: number;
  /** When it stopped firing (absent: still firing at the end of the run). */
  until?: string;
  /** The fault instances it answers to (src/rehearsal/fault-alerts.ts), set when the run ends. */
  faults: string[];
}

/** The alerts the hub would fire for these facts now (AlertService.firing, for one endpoint). */
export function alertsFor(f: EndpointFacts, now: Date): Alert[] {
  const t = now.getTime();
  const dates = (s: Served) => ({ notBefore: new Date(s.notBefore), notAfter: new Date(s.notAfter) });
  const out: Alert[] = [];
  if (f.current) out.push(...expiryAlerts([{ name: f.certificate, ...dates(f.current) }], now));
  if (f.served && f.current && f.served.fingerprint !== f.current.fingerprint)
    for (const a of expiryAlerts([{ name: f.certificate, ...dates(f.served) }], now))
      out.push({ ...a, key: `expiring:served:${f.certificate}:${f.endpoint}` });
  if (f.failures > 0) {
    const c = f.current;
    const urgent = c ? c.notAfter - t <= (c.notAfter - c.notBefore) / 6 : true;
    out.push(...renewalFailureAlerts([{ name: f.certificate, failures: f.failures, urgent }], now));
  }
  if (f.deployment)
    out.push(
      ...deploymentAlerts(
        [
          {
            certificate: f.certificate,
            endpoint: f.endpoint,
            state: f.deployment.state,
            ...(f.deployment.reason ? { reason: f.deployment.reason } : {}),
            updatedAt: new Date(f.deployment.updatedAt),
          },
        ],
        now,
      ),
    );
  if (f.silentSince !== undefined)
    out.push(
      ...agentSilentAlerts(
        [{ name: f.endpoint, kind: 'agent', lastSeenAt: new Date(f.silentSince) }],
        now,
        AGENT_SILENT_AFTER_MS,
      ),
    );
  return out;
}

export class AlertWatch {
  readonly firings: AlertFiring[] = [];
  /** The same alerts as the fault rules read them, index for index. */
  readonly spans: AlertSpan[] = [];
  /** Per endpoint, what is firing: alert key → index in `firings`. */
  private readonly firing = new Map<number, Map<string, number>>();

  constructor(
    private readonly faults: FaultInstance[],
    private readonly lifetimeMs: number,
    /** Called for each alert that starts firing (the simulated operator listens). */
    private readonly onFire: (i: number, alert: Alert) => void = () => {},
  ) {}

  /** Re-evaluates endpoint `i`; returns the alerts that started firing now. */
  evaluate(i: number, facts: EndpointFacts, now: Date): Alert[] {
    const t = now.getTime();
    const alerts = alertsFor(facts, now);
    const before = this.firing.get(i) ?? new Map<string, number>();
    const after = new Map<string, number>();
    const keys = new Set(alerts.map((a) => a.key));
    for (const [key, n] of before) {
      if (keys.has(key)) after.set(key, n);
      else {
        this.spans[n].end = t;
        this.firings[n].until = now.toISOString();
      }
    }
    const started = alerts.filter((a) => !before.has(a.key));
    this.firing.set(i, after);
    const basis = facts.served ?? facts.current;
    for (const a of started) {
      const left = basis ? (basis.notAfter - t) / (basis.notAfter - basis.notBefore) : 0;
      after.set(a.key, this.firings.length);
      this.spans.push({ endpointIndex: i, kind: a.kind, start: t, fractionLeft: left });
      this.firings.push({
        at: now.toISOString(),
        kind: a.kind,
        severity: a.severity,
        endpoint: facts.endpoint,
        title: a.title,
        fractionLeft: left,
        faults: [],
      });
      this.onFire(i, a);
    }
    return started;
  }

  /** The run ended: ties each alert to the faults it answers to. */
  finish(): AlertFiring[] {
    for (const [n, span] of this.spans.entries())
      this.firings[n].faults = this.faults
        .filter((f) => answersTo(f, span, this.lifetimeMs))
        .map((f) => f.id);
    return this.firings;
  }
}
