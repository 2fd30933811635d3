/**
 * Pure rules that turn probe observations into deployment decisions (verified / diverged / keep waiting). Kept
 * apart from the scheduler so they read, and are tested, as a table of sentences.
 */
import { windowState } from '../deploy/change-window.ts';
import type {
  Certificate,
  ChangeWindow,
  Deployment,
  Endpoint,
  ProbeTarget,
  Subscription,
} from '../core/types.ts';
import { allowedMoves } from '../deploy/states.ts';

/** `host:port[/sni][+starttls]`: identifies one target of an endpoint in stored results. */
export function probeTargetKey(t: ProbeTarget): string {
  return `${t.host}:${t.port}${t.sni ? `/${t.sni}` : ''}${t.starttls ? `+${t.starttls}` : ''}`;
}

/** Whether DNS name `name` is covered by SAN `san` (one-label wildcards only, as browsers do). */
export function sanCovers(san: string, name: string): boolean {
  const a = san.toLowerCase();
  const b = name.toLowerCase().replace(/\.$/, '');
  if (a === b) return true;
  if (!a.startsWith('*.')) return false;
  const dot = b.indexOf('.');
  return dot > 0 && b.slice(dot + 1) === a.slice(2);
}

/**
 * The targets that prove a subscription: with one subscription on the endpoint, all its targets; with several,
 * the targets whose SNI (or host) the certificate covers, since one port cannot serve two certificates to the
 * same name. The subscription's own `verify` target always counts.
 */
export function targetsForSubscription(
  endpoint: Pick<Endpoint, 'probeTargets'>,
  sub: Pick<Subscription, 'verify'>,
  cert: Pick<Certificate, 'sans'>,
  subscriptionsOnEndpoint: number,
): ProbeTarget[] {
  const base =
    subscriptionsOnEndpoint <= 1
      ? endpoint.probeTargets
      : endpoint.probeTargets.filter((t) => cert.sans.some((s) => sanCovers(s, t.sni ?? t.host)));
  const out = [...base];
  if (sub.verify && !out.some((t) => probeTargetKey(t) === probeTargetKey(sub.verify!))) out.push(sub.verify);
  return out;
}

export interface TargetObservation {
  key: string;
  /** Served leaf fingerprint; absent when the probe failed before seeing a certificate. */
  fingerprint?: string;
  errorKind?: string;
}

export type JudgementStatus =
  | 'verified' // every target serves the version
  | 'not_reloaded' // an older certificate is served, and the agent has not reported a reload yet
  | 'waiting_window' // old certificate served while the change window is still open
  | 'grace' // reloaded recently: the old certificate is tolerated until `deadline`
  | 'diverged' // served something else after the grace period
  | 'unreachable' // some targets could not be probed; nothing to conclude
  | 'agent_owned'; // failed / rolled back: the agent's report stands

export interface Judgement {
  status: JudgementStatus;
  /** What the probe service should write, if anything. */
  action: 'verify' | 'diverge' | 'none';
  /** When the old fingerprint stops being tolerated (probe again then). */
  deadline?: Date;
  /** The first target serving something else (for the diverged detail). */
  mismatch?: { target: string; served: string };
}

const NOT_RELOADED = new Set(['pending', 'delivered', 'installed', 'waiting_window']);

/**
 * Decides what the observations of one subscription's targets mean for its current-version deployment.
 * - every target serves the expected fingerprint → verified (also recovers a diverged deployment);
 * - failed / rolled_back deployments are the agent's word and are left alone;
 * - a target serving another certificate before the agent reported a reload is expected (waiting, no failure);
 * - after a reload, another certificate is tolerated while the change window that contained the reload is still
 *   open and for `graceMs` after the reload; after that the deployment is diverged;
 * - probe errors without a certificate (refused, timeout) prove nothing either way.
 */
export function judgeDeployment(input: {
  deployment?: Pick<Deployment, 'state' | 'updatedAt'>;
  expected: string;
  observations: TargetObservation[];
  now: Date;
  graceMs: number;
  window?: ChangeWindow;
}): Judgement {
  const { deployment: d, expected, observations, now } = input;
  // failed / rolled_back: the lifecycle table gives a probe no move out of them.
  if (d && allowedMoves('probe', d.state).length === 0) return { status: 'agent_owned', action: 'none' };
  if (observations.length > 0 && observations.every((o) => o.fingerprint === expected)) {
    return { status: 'verified', action: d?.state === 'verified' ? 'none' : 'verify' };
  }
  const other = observations.find((o) => o.fingerprint !== undefined && o.fingerprint !== expected);
  if (!other) return { status: 'unreachable', action: 'none' };
  const mismatch = { target: other.key, served: other.fingerprint! };
  if (!d || NOT_RELOADED.has(d.state)) {
    return {
      status: d?.state === 'waiting_window' ? 'waiting_window' : 'not_reloaded',
      action: 'none',
      mismatch,
    };
  }
  if (d.state === 'diverged') return { status: 'diverged', action: 'none', mismatch };
  // reloaded or verified: count from the transition
  const since = new Date(d.updatedAt);
  let deadline = new Date(since.getTime() + input.graceMs);
  if (input.window) {
    const ws = windowState(input.window, since);
    if (ws.open && ws.closesAt && ws.closesAt > deadline) deadline = ws.closesAt;
  }
  if (now < deadline) {
    const inWindow = input.window ? windowState(input.window, now).open : false;
    return { status: inWindow ? 'waiting_window' : 'grace', action: 'none', deadline, mismatch };
  }
  return { status: 'diverged', action: 'diverge', deadline, mismatch };
}

/** End of the change window a waiting deployment waits for: the one open at `since`, else the next one. */
export function windowEndFor(window: ChangeWindow, since: Date): Date | undefined {
  const ws = windowState(window, since);
  if (ws.open) return ws.closesAt;
  return ws.opensAt ? new Date(ws.opensAt.getTime() + window.durationMinutes * 60_000) : undefined;
}
