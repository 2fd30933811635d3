/**
 * The deployment lifecycle: its states, the actors that move a deployment, and the ONE table of moves each actor
 * may make. The store enforces it on every transition (SqlStore `transitionIn`); the agent's report schema, the
 * agent's own records and docs/architecture.md ("Deployment lifecycle") are derived from it.
 *
 * Precedence between the agent's local verify and the hub's probes: the agent's `verified` is provisional evidence
 * (it checked its own `verify` target, which may sit behind the load balancer everyone else reaches); a probe's
 * verdict wins. A probe that sees another certificate after the grace period moves a `verified` deployment to
 * `diverged`, and an agent may not move it back to `verified`: only a probe that sees the version served again
 * may. The agent may start the chain again from `diverged` (a rewrite, a reload: new actions on the endpoint that
 * the probes then judge afresh). `failed` and `rolled_back` are the agent's own final word on an attempt: no probe
 * resurrects them, and only an admin redeploy reopens them (back to `pending`).
 */
import {
  DEPLOYMENT_STATES,
  REPORTED_STATES,
  type DeploymentState,
  type ReportedState,
} from '../core/types.ts';

// The state lists live in core so the wire contract (protocol/) can validate reports without importing deploy/.
export { DEPLOYMENT_STATES, REPORTED_STATES, type DeploymentState, type ReportedState };

/**
 * Who moves deployments, taken from the actor recorded with the transition: `agent:<endpoint>`,
 * `connector:<endpoint>`, `probe`, `admin:<token name>`; `system` is the store creating the rows of a new version
 * or subscription.
 */
export const ACTOR_KINDS = ['agent', 'connector', 'probe', 'admin', 'system'] as const;
export type ActorKind = (typeof ACTOR_KINDS)[number];

/** The state "before" a deployment row exists. */
export type FromState = DeploymentState | 'none';

type Moves = Readonly<Partial<Record<FromState, readonly DeploymentState[]>>>;

/** Once delivered, every step of the pipeline may follow any other: redeploys and resyncs run it again. */
const AFTER_DELIVERY = REPORTED_STATES.filter((s) => s !== 'delivered');

/**
 * The agent's pipeline (a connector runs the same one from the hub's side). A row that does not exist yet counts as
 * `pending`. Repeated reports are allowed (`waiting_window` again with a later `nextWindowAt`, a report sent twice
 * because the agent crashed before it saw the answer); `delivered` only before installing, so a resync does not
 * push a live deployment back.
 */
const PIPELINE: Moves = {
  none: REPORTED_STATES,
  pending: REPORTED_STATES,
  delivered: REPORTED_STATES,
  installed: AFTER_DELIVERY,
  waiting_window: AFTER_DELIVERY,
  reloaded: AFTER_DELIVERY,
  verified: AFTER_DELIVERY,
  diverged: AFTER_DELIVERY.filter((s) => s !== 'verified'),
  failed: ['failed'],
  rolled_back: ['rolled_back'],
};

/** For each actor, from each state, the states it may move a deployment to. What is not listed is refused. */
export const TRANSITIONS: Readonly<Record<ActorKind, Moves>> = {
  agent: PIPELINE,
  connector: PIPELINE,
  probe: {
    // Every target serving the version is the strongest evidence there is, whatever the agent said so far
    // (an endpoint without a reload command, a server that picks up new files on its own).
    none: ['verified'],
    pending: ['verified'],
    delivered: ['verified'],
    installed: ['verified'],
    waiting_window: ['verified'],
    // Another certificate served after the grace period: diverged, even when the agent said verified.
    reloaded: ['verified', 'diverged'],
    verified: ['diverged'],
    diverged: ['verified'],
  },
  admin: {
    // `certfleet deploy` after fixing what made the attempt fail: the agent then starts over.
    failed: ['pending'],
    rolled_back: ['pending'],
  },
  system: { none: ['pending'] },
};

/** `agent:web1` → agent; undefined for actors that may not move deployments at all. */
export function actorKind(actor: string): ActorKind | undefined {
  const kind = actor.split(':', 1)[0];
  return (ACTOR_KINDS as readonly string[]).includes(kind) ? (kind as ActorKind) : undefined;
}

export function allowedMoves(kind: ActorKind, from: FromState): readonly DeploymentState[] {
  return TRANSITIONS[kind][from] ?? [];
}

export function mayMove(kind: ActorKind, from: FromState, to: DeploymentState): boolean {
  return allowedMoves(kind, from).includes(to);
}

const REOPEN =
  'the attempt ended; fix the cause, then redeploy with `certfleet deploy CERTIFICATE` (it reopens it as pending)';

/** How to get a deployment out of a state an actor may not leave. */
const WAY_OUT: Partial<Record<FromState, string>> = {
  failed: REOPEN,
  rolled_back: REOPEN,
  diverged:
    "the hub's probes saw another certificate served: only a probe that sees this version again marks it verified; " +
    'fix what the server serves, or redeploy with `certfleet deploy CERTIFICATE`',
};

/** Who sets the states no agent reports. */
const SET_BY: Partial<Record<DeploymentState, string>> = {
  pending: 'pending is set by the hub (a new version, or an admin redeploy)',
  diverged: "diverged is set by the hub's probes",
};

/**
 * Why `actor` may not move a deployment from `from` to `to` (message + hint for a CertfleetError), or undefined
 * when the table allows the move.
 */
export function refusalOf(
  actor: string,
  from: FromState,
  to: DeploymentState,
): { message: string; hint: string } | undefined {
  const kind = actorKind(actor);
  if (kind && mayMove(kind, from, to)) return undefined;
  const move = from === 'none' ? `start a deployment as ${to}` : `move a deployment from ${from} to ${to}`;
  if (!kind) {
    return {
      message: `"${actor}" may not ${move}: it is not an actor of the deployment lifecycle`,
      hint: `deployments are moved by ${ACTOR_KINDS.filter((k) => k !== 'system')
        .map((k) => (k === 'probe' ? k : `${k}:<name>`))
        .join(', ')}`,
    };
  }
  const a = /^[aeiou]/.test(kind) ? `an ${kind}` : `a ${kind}`;
  const allowed = allowedMoves(kind, from);
  const neverItsMove = !Object.values(TRANSITIONS[kind]).some((tos) => tos?.includes(to));
  return {
    message: `${actor} may not ${move}`,
    hint:
      SET_BY[to] && neverItsMove
        ? `${SET_BY[to]}, never by ${a}`
        : (WAY_OUT[from] ??
          (allowed.length
            ? `from ${from}, ${a} may move it to ${allowed.join(', ')}`
            : `${a} may not move a ${from} deployment`)),
  };
}
