import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { AgentClient } from '../../src/agent/agent-client.ts';
import type { AgentIdentity } from '../../src/agent/agent-identity.ts';
import { enrollAgent } from '../../src/agent/enroll.ts';
import type { OutputSpec, ProbeTarget } from '../../src/core/types.ts';
import type { TestHub } from './hub.ts';
import { onCleanup } from './cleanup.ts';
import { tempDir } from './tmp.ts';

export interface EnrolledAgent {
  name: string;
  stateDir: string;
  identity: AgentIdentity;
  /** A signed client for this agent (closed when the test ends). */
  client: AgentClient;
}

/** Creates an agent endpoint on the hub, mints a token and enrolls a real agent identity in a temp state dir. */
export async function enrollTestAgent(t: TestContext, hub: TestHub, name: string): Promise<EnrolledAgent> {
  await hub.client.post('/api/v1/endpoints', { name, kind: 'agent' });
  const minted = await hub.client.post<{ token: string; caFingerprint: string }>(
    `/api/v1/endpoints/${name}/enroll-token`,
    {},
  );
  const stateDir = join(await tempDir(t, 'certfleet-agent-'), 'state');
  const identity = await enrollAgent({
    hub: hub.url,
    token: minted.token,
    caFingerprint: minted.caFingerprint,
    stateDir,
  });
  const client = new AgentClient(identity.hub, identity.caPem, identity);
  onCleanup(t, () => client.close());
  return { name, stateDir, identity, client };
}

export async function createCertificate(hub: TestHub, name: string, sans = [`${name}.test`]): Promise<void> {
  await hub.client.post('/api/v1/certificates', { name, sans, lifetimeDays: 30 });
}

/** Subscribes an endpoint to a certificate; returns the subscription id. */
export async function subscribe(
  hub: TestHub,
  endpoint: string,
  certificate: string,
  spec: { outputs?: OutputSpec[]; configTest?: string; reload?: string; verify?: ProbeTarget } = {},
): Promise<string> {
  const sub = await hub.client.post<{ id: string }>('/api/v1/subscriptions', {
    endpoint,
    certificate,
    outputs: spec.outputs ?? [],
    ...(spec.configTest ? { configTest: spec.configTest } : {}),
    ...(spec.reload ? { reload: spec.reload } : {}),
    ...(spec.verify ? { verify: spec.verify } : {}),
  });
  return sub.id;
}

/** Polls until `check` returns a truthy value (or throws after `timeoutMs`). */
export async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
