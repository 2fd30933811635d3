/**
 * An agent's desired state carries the probe targets its agent probes (`from: agent | both`) as stored at the
 * current revision: a change to the targets reaches the next answer even when the caller's endpoint (the agent-auth
 * cache's) is older, and an endpoint without such targets gets no `probes` at all.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { systemClock } from '../../src/core/clock.ts';
import { DesiredStateBuilder } from '../../src/hub/agent-protocol/desired-state.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';

const PROBES = { intervalSeconds: 60, timeoutMs: 2000 };

describe('desired state: probe targets', () => {
  test("follow the endpoint's stored targets at each revision; hub-only targets are not the agent's", async (t) => {
    const store = await openSqliteStore(':memory:', systemClock);
    t.after(() => store.close());
    const desired = new DesiredStateBuilder(store, PROBES);
    const cached = await store.createEndpoint(
      { name: 'web-1', kind: 'agent', probeTargets: [{ host: 'web-1.test', port: 443 }], labels: {} },
      'test',
    );
    assert.equal((await desired.build(cached)).probes, undefined, 'the hub probes a target without `from`');

    const agentTarget = { host: '10.0.0.5', port: 8443, sni: 'web.test', from: 'agent' as const };
    await store.updateEndpoint(
      'web-1',
      { probeTargets: [agentTarget, { host: 'web-1.test', port: 443 }] },
      'test',
    );
    assert.deepEqual(
      (await desired.build(cached)).probes,
      { targets: [agentTarget], ...PROBES },
      'the stored targets, not those of the older endpoint passed in',
    );

    await store.updateEndpoint('web-1', { probeTargets: [] }, 'test');
    assert.equal((await desired.build(cached)).probes, undefined);
  });
});
