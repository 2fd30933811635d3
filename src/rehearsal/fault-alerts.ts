/**
 * Which alerts answer to which fault, and when a fault counts as alerted. Faults overlap (a hub restart or a
 * reload failure inside a CA outage), so an alert is not owned by one fault: it answers to every fault that hit its
 * endpoint, can raise its kind, and was in force or still acting (up to a lifetime after its end) while it fired.
 * A fault is alerted on an endpoint at the first such alert firing at or after the fault's start; an alert already
 * firing when the fault began means the operator already looks at that endpoint, so it counts at once.
 */
import type { AlertKind } from '../notify/alert.ts';
import type { FaultInstance } from './fault-plan.ts';
import type { FaultKind } from './rehearsal-options.ts';

/** Which faults can raise which alert kinds; other kinds (expiry) may answer to any fault. */
const CAUSES: Partial<Record<AlertKind, FaultKind[]>> = {
  renewal_failed: ['ca-down', 'rate-limit', 'dns'],
  rolled_back: ['reload-fails'],
  deployment_failed: ['reload-fails'],
  agent_silent: ['agent-offline'],
};

/** One alert's life on one endpoint, as the fault rules read it (instants in ms). */
export interface AlertSpan {
  endpointIndex: number;
  kind: AlertKind;
  start: number;
  /** When it stopped firing; undefined: still firing at the end of the run. */
  end?: number;
  /** Share of the served certificate's lifetime left at `start`. */
  fractionLeft: number;
}

/** Whether `alert` answers to fault `f`: an endpoint it hit, a kind it can raise, firing while `f` acts. */
export function answersTo(f: FaultInstance, alert: AlertSpan, lifetimeMs: number): boolean {
  const causes = CAUSES[alert.kind];
  if (causes && !causes.includes(f.kind)) return false;
  if (f.affected && !f.affected.has(alert.endpointIndex)) return false;
  const firingAfterStart = alert.end === undefined || alert.end > f.start;
  return firingAfterStart && alert.start <= f.end + lifetimeMs;
}

export interface FaultAlerting {
  /** Alerts answering to the fault, by kind. */
  byKind: Record<string, number>;
  /** Endpoints with an alert answering to the fault. */
  endpointsAlerted: number;
  /** Of those, endpoints already alerted when the fault began (an alert of theirs was firing then). */
  alreadyAlerted: number;
  /** Over endpoints first alerted after the fault began: the smallest share of lifetime left at that alert. */
  minFractionLeftAtFirstAlert?: number;
  /** The kind of that alert. */
  latestFirstAlertKind?: AlertKind;
}

/** How fault `f` was alerted: per endpoint, the first alert answering to it (at the fault's start if already firing). */
export function faultAlerting(f: FaultInstance, alerts: AlertSpan[], lifetimeMs: number): FaultAlerting {
  const byKind: Record<string, number> = {};
  const first = new Map<number, AlertSpan>();
  for (const a of alerts) {
    if (!answersTo(f, a, lifetimeMs)) continue;
    byKind[a.kind] = (byKind[a.kind] ?? 0) + 1;
    const seen = first.get(a.endpointIndex);
    if (!seen || a.start < seen.start) first.set(a.endpointIndex, a);
  }
  let alreadyAlerted = 0;
  let min: AlertSpan | undefined;
  for (const a of first.values()) {
    if (a.start <= f.start) alreadyAlerted++;
    else if (!min || a.fractionLeft < min.fractionLeft) min = a;
  }
  return {
    byKind,
    endpointsAlerted: first.size,
    alreadyAlerted,
    ...(min ? { minFractionLeftAtFirstAlert: min.fractionLeft, latestFirstAlertKind: min.kind } : {}),
  };
}
