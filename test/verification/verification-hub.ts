/**
 * Shared setup for the verification tests: a real hub (startHub, SQLite, internal CA) with a ManualClock and a
 * hub config (probes / alerts sections), plus helpers to create a certificate, an endpoint with probe targets and
 * a subscription, and to write a version's files for nginx.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Writable } from 'node:stream';
import { ManualClock } from '../../src/core/clock.ts';
import { createLogger } from '../../src/core/log.ts';
import type {
  Certificate,
  CertificateVersion,
  Endpoint,
  ProbeTarget,
  Subscription,
} from '../../src/core/types.ts';
import { hubConfigSchema } from '../../src/hub/hub-config.ts';
import { startHub, type RunningHub } from '../../src/hub/hub.ts';
import { HubClient } from '../../src/cli/client.ts';
import { tempDir } from '../helpers/tmp.ts';

export interface VerificationHub extends RunningHub {
  clock: ManualClock;
  dir: string;
  token: string;
  client: HubClient;
  logs: string[];
}

export async function startVerificationHub(
  t: TestContext,
  config: Record<string, unknown> = {},
  opts: { clock?: ManualClock } = {},
): Promise<VerificationHub> {
  const dir = await tempDir(t);
  const clock = opts.clock ?? new ManualClock();
  const token = `cfa_test_${randomBytes(16).toString('hex')}`;
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const hub = await startHub({
    dataDir: join(dir, 'data'),
    listen: '127.0.0.1:0',
    clock,
    // planner off: tests drive it (and the dead man's switch) by hand
    config: hubConfigSchema.parse({ planner: { enabled: false }, ...config }),
    logger: createLogger({ level: 'debug', destination }),
    env: { CERTFLEET_ADMIN_TOKEN: token },
  });
  t.after(() => hub.close());
  return {
    ...hub,
    clock,
    dir,
    token,
    logs,
    client: new HubClient({ hub: hub.url, token, caPem: hub.caPem }),
  };
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
