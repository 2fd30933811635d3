/**
 * Pure rules that turn probe observations into deployment decisions (verified / diverged / keep waiting). Kept
 * apart from the scheduler so they read, and are tested, as a table of sentences.
 */
import { windowState } from '../deploy/change-window.ts';
import type { ChangeWindow, Deployment } from '../core/types.ts';
import { allowedMoves } from '../deploy/states.ts';

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

/** One stored result of a target, as the judgement needs it. */
export interface SourcedResult {
  targetKey: string;
  /** `hub` or `agent:<endpoint>`. */
  source: string;
  /** On the hub's clock. */
  at: string;
  fingerprint?: string;
  errorKind?: string;
}

/**
 * Merges one target's results from the sources that probe it (its `from`) into one observation:
 * - only the allowed sources count: `from: agent` is judged on the agent's results alone, `from: hub` on the hub's;
 * - once the deployment was reloaded (reloaded, verified, diverged), a result taken before its last transition is
 *   stale and ignored: it shows the server before the reload (an agent report may arrive late);
 * - `from: both`: any fresh result showing another certificate wins (that source is named), so one vantage point
 *   seeing the old certificate after the grace period is divergence; else any fresh result showing the version;
 *   else no certificate seen (nothing to conclude).
 * `result` is the result the observation came from (absent when no allowed source has a fresh one).
 */
export function observeTarget<R extends SourcedResult>(input: {
  key: string;
  sources: string[];
  results: R[];
  expected: string;
  deployment?: Pick<Deployment, 'state' | 'updatedAt'>;
}): { observation: TargetObservation; result?: R } {
  const d = input.deployment;
  const since = d && !NOT_RELOADED.has(d.state) ? new Date(d.updatedAt).getTime() : -Infinity;
  const fresh = input.results.filter(
    (r) => input.sources.includes(r.source) && new Date(r.at).getTime() >= since,
  );
  const pick =
    fresh.find((r) => r.fingerprint !== undefined && r.fingerprint !== input.expected) ??
    fresh.find((r) => r.fingerprint === input.expected) ??
    fresh[0];
  if (!pick) return { observation: { key: input.key, errorKind: 'no_result' } };
  return {
    observation: {
      key: input.key,
      ...(pick.fingerprint ? { fingerprint: pick.fingerprint } : {}),
      ...(pick.errorKind ? { errorKind: pick.errorKind } : {}),
    },
    result: pick,
  };
}

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
