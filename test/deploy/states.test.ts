/**
 * The deployment lifecycle table (src/deploy/states.ts), read as sentences: who may move a deployment from which
 * state to which. The store enforces exactly this table (test/store/deployment-transitions.test.ts).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import {
  ACTOR_KINDS,
  DEPLOYMENT_STATES,
  REPORTED_STATES,
  TRANSITIONS,
  actorKind,
  mayMove,
  refusalOf,
  type ActorKind,
  type DeploymentState,
  type FromState,
} from '../../src/deploy/states.ts';

type Row = [sentence: string, actor: string, from: FromState, to: DeploymentState, allowed: boolean];

// Rows read as sentences; one line each, so the table reads down the page.
// prettier-ignore
const rows: Row[] = [
  // the system (the store creating rows)
  ["a new version's deployment starts pending", 'system', 'none', 'pending', true],
  ['an agent may not create a deployment as pending', 'agent:web1', 'none', 'pending', false],

  // agents: their own pipeline
  ['an agent reports delivered on a pending deployment', 'agent:web1', 'pending', 'delivered', true],
  ['an agent installs a delivered version', 'agent:web1', 'delivered', 'installed', true],
  ['an agent may fail a delivered version (the bundle does not validate)', 'agent:web1', 'delivered', 'failed', true],
  ['an agent may fail a pending version (the bundle was refused)', 'agent:web1', 'pending', 'failed', true],
  ['an agent may wait for the change window after installing', 'agent:web1', 'installed', 'waiting_window', true],
  ['an agent may report waiting_window twice (a later window)', 'agent:web1', 'waiting_window', 'waiting_window', true],
  ['an agent reloads in the window', 'agent:web1', 'waiting_window', 'reloaded', true],
  ['an agent may roll back a waiting install whose config test fails', 'agent:web1', 'waiting_window', 'rolled_back', true],
  ['an agent reports verified after its local verify', 'agent:web1', 'reloaded', 'verified', true],
  ['an agent may verify an install without a reload command', 'agent:web1', 'installed', 'verified', true],
  ['an agent may roll back a failed reload', 'agent:web1', 'reloaded', 'rolled_back', true],
  ['an agent may run the pipeline again on a verified deployment (a redeploy)', 'agent:web1', 'verified', 'reloaded', true],
  ['an agent may rewrite the files of a verified deployment', 'agent:web1', 'verified', 'installed', true],
  ['an agent may install a deployment an admin reopened', 'agent:web1', 'pending', 'installed', true],
  ['an agent may repeat a failed report (sent twice)', 'agent:web1', 'failed', 'failed', true],
  ['an agent may not report diverged', 'agent:web1', 'reloaded', 'diverged', false],
  ['an agent may not report diverged on a verified deployment either', 'agent:web1', 'verified', 'diverged', false],
  ['an agent may not report pending', 'agent:web1', 'failed', 'pending', false],
  ["an agent may not overrule the probes' diverged with its local verify", 'agent:web1', 'diverged', 'verified', false],
  ['an agent may reload a diverged deployment again (the probes then judge afresh)', 'agent:web1', 'diverged', 'reloaded', true],
  ['an agent may not push a live deployment back to delivered (a resync)', 'agent:web1', 'verified', 'delivered', false],
  ['an agent may not restart a failed deployment on its own', 'agent:web1', 'failed', 'installed', false],
  ['an agent may not restart a rolled_back deployment on its own', 'agent:web1', 'rolled_back', 'delivered', false],
  ['an agent may not turn a rollback into a success', 'agent:web1', 'rolled_back', 'verified', false],

  // connectors run the same pipeline from the hub's side
  ['a connector installs a delivered version', 'connector:lb1', 'delivered', 'installed', true],
  ['a connector may not report diverged', 'connector:lb1', 'verified', 'diverged', false],

  // probes: the hub's outside view wins
  ['a probe verifies a reloaded deployment', 'probe', 'reloaded', 'verified', true],
  ['a probe verifies an installed deployment (an endpoint without reload)', 'probe', 'installed', 'verified', true],
  ['a probe verifies a version already served before the agent reported', 'probe', 'pending', 'verified', true],
  ['a probe marks a reloaded deployment diverged after the grace period', 'probe', 'reloaded', 'diverged', true],
  ['a probe marks a deployment diverged even when the agent verified it', 'probe', 'verified', 'diverged', true],
  ['a probe recovers a diverged deployment that serves the version again', 'probe', 'diverged', 'verified', true],
  ['a probe may not resurrect a rolled_back deployment', 'probe', 'rolled_back', 'verified', false],
  ['a probe may not resurrect a failed deployment', 'probe', 'failed', 'verified', false],
  ['a probe may not diverge a deployment still waiting for its window', 'probe', 'waiting_window', 'diverged', false],
  ['a probe may not report what an agent did', 'probe', 'reloaded', 'rolled_back', false],
  ['a probe may not reopen a deployment', 'probe', 'failed', 'pending', false],

  // admins: a redeploy reopens an ended attempt
  ['an admin redeploy may restart a failed deployment', 'admin:ops', 'failed', 'pending', true],
  ['an admin redeploy may restart a rolled_back deployment', 'admin:ops', 'rolled_back', 'pending', true],
  ['an admin redeploy leaves a verified deployment as it is', 'admin:ops', 'verified', 'pending', false],
  ['an admin redeploy does not hide a diverged deployment', 'admin:ops', 'diverged', 'pending', false],
  ['an admin may not declare a deployment verified', 'admin:ops', 'reloaded', 'verified', false],

  // everyone else
  ['a read token may not move a deployment', 'read:grafana', 'pending', 'verified', false],
  ['the planner may not move a deployment', 'planner', 'failed', 'pending', false],
];

describe('the deployment lifecycle table', () => {
  for (const [sentence, actor, from, to, allowed] of rows) {
    test(sentence, () => {
      assert.equal(refusalOf(actor, from, to) === undefined, allowed, `${actor}: ${from} → ${to}`);
    });
  }

  test('agents report exactly the states the table lets them reach: never pending, never diverged', () => {
    const reachable = new Set(Object.values(TRANSITIONS.agent).flatMap((tos) => tos ?? []));
    assert.deepEqual([...reachable].sort(), [...REPORTED_STATES].sort());
    const reported: readonly string[] = REPORTED_STATES;
    assert.ok(!reported.includes('pending') && !reported.includes('diverged'));
  });

  test('every state can be reached from a new row, and every state can be left by someone', () => {
    const reached = new Set<FromState>(['none']);
    for (let grew = true; grew;) {
      grew = false;
      for (const moves of Object.values(TRANSITIONS)) {
        for (const [from, tos] of Object.entries(moves)) {
          if (!reached.has(from as FromState)) continue;
          for (const to of tos ?? []) {
            if (reached.has(to)) continue;
            reached.add(to);
            grew = true;
          }
        }
      }
    }
    assert.deepEqual(
      [...DEPLOYMENT_STATES].filter((s) => !reached.has(s)),
      [],
      'unreachable',
    );
    const stuck = DEPLOYMENT_STATES.filter((s) =>
      ACTOR_KINDS.every((k) => (TRANSITIONS[k][s] ?? []).every((to) => to === s)),
    );
    assert.deepEqual(stuck, [], 'no way out');
  });

  test('the actor kind comes from the recorded actor', () => {
    assert.equal(actorKind('agent:web1'), 'agent');
    assert.equal(actorKind('admin:ops'), 'admin');
    assert.equal(actorKind('probe'), 'probe');
    assert.equal(actorKind('read:grafana'), undefined);
    assert.equal(actorKind('agentsmith'), undefined);
    assert.equal(mayMove('probe', 'rolled_back', 'verified'), false);
  });
});

describe('a refusal names the move and the way out', () => {
  test("an agent's verify after diverged points at the probes", () => {
    const r = refusalOf('agent:web1', 'diverged', 'verified')!;
    assert.equal(r.message, 'agent:web1 may not move a deployment from diverged to verified');
    assert.match(r.hint, /only a probe that sees this version again marks it verified/);
  });

  test('a state no agent reports says who sets it', () => {
    assert.equal(
      refusalOf('agent:web1', 'verified', 'diverged')!.hint,
      "diverged is set by the hub's probes, never by an agent",
    );
    assert.match(
      refusalOf('agent:web1', 'none', 'pending')!.message,
      /may not start a deployment as pending/,
    );
  });

  test('an ended attempt points at `certfleet deploy`', () => {
    assert.match(refusalOf('probe', 'rolled_back', 'verified')!.hint, /certfleet deploy/);
    assert.match(refusalOf('agent:web1', 'failed', 'installed')!.hint, /certfleet deploy/);
  });

  test('otherwise the moves that are allowed are listed', () => {
    assert.equal(
      refusalOf('agent:web1', 'verified', 'delivered')!.hint,
      'from verified, an agent may move it to installed, waiting_window, reloaded, verified, failed, rolled_back',
    );
    assert.equal(
      refusalOf('admin:ops', 'verified', 'pending')!.hint,
      'an admin may not move a verified deployment',
    );
  });

  test('an actor outside the lifecycle is named as such', () => {
    const r = refusalOf('planner', 'failed', 'pending')!;
    assert.match(r.message, /"planner" may not .* not an actor of the deployment lifecycle/);
    assert.match(r.hint, /agent:<name>, connector:<name>, probe, admin:<name>/);
  });
});

/** The table as markdown: a row per from-state, a column per group of actors with the same moves. */
function renderTable(): string {
  const groups: ActorKind[][] = [];
  for (const k of ACTOR_KINDS) {
    const same = groups.find((g) => JSON.stringify(TRANSITIONS[g[0]]) === JSON.stringify(TRANSITIONS[k]));
    if (same) same.push(k);
    else groups.push([k]);
  }
  const froms: FromState[] = ['none', ...DEPLOYMENT_STATES];
  return [
    `| from ↓ / actor → | ${groups.map((g) => g.join(', ')).join(' | ')} |`,
    `|---|${groups.map(() => '---').join('|')}|`,
    ...froms.map(
      (f) =>
        `| ${f === 'none' ? '(no row)' : `\`${f}\``} | ` +
        `${groups.map((g) => (TRANSITIONS[g[0]][f] ?? []).join(', ') || '—').join(' | ')} |`,
    ),
  ].join('\n');
}

test('docs/architecture.md shows the table the store enforces', async () => {
  const doc = await readFile(new URL('../../docs/architecture.md', import.meta.url), 'utf8');
  assert.ok(doc.includes(renderTable()), `docs/architecture.md should contain:\n${renderTable()}`);
});
