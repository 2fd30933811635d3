import type { TestContext } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import type { DeploymentState } from '../../src/deploy/states.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';
import type { SqlStore } from '../../src/store/sql-store.ts';
import { onCleanup } from './cleanup.ts';

/**
 * An in-memory store holding certificate `web` with version 01, and `count` agent endpoints `web1`… subscribed to
 * it, so each subscription has a `pending` deployment of v1. Closed when the test ends.
 */
export async function storeWithDeployments(t: TestContext, count = 1) {
  const store: SqlStore = await openSqliteStore(':memory:', new ManualClock('2026-01-01T00:00:00Z'));
  onCleanup(t, () => store.close());
  const cert = await store.createCertificate(
    { name: 'web', sans: ['web.example.test'], keyType: 'ecdsa-p256', issuer: 'internal', lifetimeDays: 30 },
    'admin:ops',
  );
  const subscriptionIds: string[] = [];
  for (let i = 1; i <= count; i++) {
    const endpoint = await store.createEndpoint(
      { name: `web${i}`, kind: 'agent', probeTargets: [], labels: {} },
      'admin:ops',
    );
    const { subscription } = await store.upsertSubscription(
      endpoint.id,
      cert.id,
      { outputs: [] },
      'admin:ops',
    );
    subscriptionIds.push(subscription.id);
  }
  const v1 = await store.addVersion(
    cert.id,
    {
      serial: '01',
      fingerprint: 'fp-01',
      notBefore: '2026-01-01T00:00:00Z',
      notAfter: '2026-02-01T00:00:00Z',
      certPem: 'cert',
      chainPem: 'chain',
      sealedKey: 'sealed',
      issuer: 'internal',
    },
    'planner',
  );
  /** The state of subscription `i`'s v1 deployment. */
  const state = async (i = 0): Promise<DeploymentState | undefined> =>
    (await store.getDeployment(subscriptionIds[i], v1.id))?.state;
  const refusals = () => store.listEvents({ kind: 'deployment.transition_refused' });
  return { store, subscriptionIds, v1, state, refusals };
}
