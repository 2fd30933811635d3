/**
 * Shared setup for the verification tests: a real hub (startHub, SQLite, internal CA) with a ManualClock and a
 * hub config (probes / alerts sections), plus helpers to create a certificate, an endpoint with probe targets and
 * a subscription, and to write a version's files for nginx.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import type {
  Certificate,
  CertificateVersion,
  Endpoint,
  ProbeTarget,
  Subscription,
} from '../../src/core/types.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';

export interface VerificationHub extends TestHub {
  clock: ManualClock;
  dir: string;
}

export async function startVerificationHub(
  t: TestContext,
  config: Record<string, unknown> = {},
  opts: { clock?: ManualClock } = {},
): Promise<VerificationHub> {
  const dir = await tempDir(t);
  const clock = opts.clock ?? new ManualClock();
  // planner off (startTestHub's default): tests drive it, and the dead man's switch, by hand
  const hub = await startTestHub(t, { dataDir: join(dir, 'data'), clock, config });
  return { ...hub, clock, dir };
}

export async function createFleet(
  hub: VerificationHub,
  opts: {
    name: string;
    targets: ProbeTarget[];
    sans?: string[];
    lifetimeDays?: number;
    kind?: 'agent' | 'connector';
  },
): Promise<{ cert: Certificate; version: CertificateVersion; endpoint: Endpoint; sub: Subscription }> {
  const store = hub.ctx.store;
  const cert = await hub.certificates.create(
    {
      name: opts.name,
      sans: opts.sans ?? ['localhost'],
      keyType: 'ecdsa-p256',
      issuer: 'internal',
      lifetimeDays: opts.lifetimeDays ?? 30,
    },
    'admin:test',
  );
  const version = (await store.currentVersion(cert.id))!;
  const endpoint = await store.createEndpoint(
    { name: `${opts.name}-edge`, kind: opts.kind ?? 'agent', probeTargets: opts.targets, labels: {} },
    'admin:test',
  );
  const { subscription: sub } = await store.upsertSubscription(
    endpoint.id,
    cert.id,
    { outputs: [{ path: '/tmp/unused.pem', format: 'fullchain' }] },
    'admin:test',
  );
  return { cert, version, endpoint, sub };
}

/** Writes fullchain + key of a version where nginx reads them. */
export async function writeVersionFiles(
  hub: VerificationHub,
  cert: Certificate,
  version: CertificateVersion,
  certPath: string,
  keyPath: string,
): Promise<void> {
  await writeFile(certPath, version.certPem + version.chainPem);
  await writeFile(keyPath, await hub.certificates.privateKeyOf(cert, version), { mode: 0o600 });
}

/** Polls until `fn` returns a truthy value (real time), failing after `ms`. */
export async function until<T>(
  fn: () => Promise<T | undefined | false>,
  ms = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
