import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Writable } from 'node:stream';
import type { Clock } from '../../src/core/clock.ts';
import { createLogger } from '../../src/core/log.ts';
import { HubClient } from '../../src/cli/client.ts';
import { hubConfigSchema } from '../../src/hub/hub-config.ts';
import { startHub, type RunningHub } from '../../src/hub/hub.ts';
import { onCleanup } from './cleanup.ts';
import { tempDir } from './tmp.ts';

export interface TestHub extends RunningHub {
  dataDir: string;
  token: string;
  client: HubClient;
  /** Everything the hub logged, to assert that no secret leaks. */
  logs: string[];
}

/**
 * Starts a real hub (SQLite, internal CA, HTTPS) on a free loopback port; closed when the test ends. `config` is a
 * hub config validated like a file; the planner loop is off unless the config turns it on (tests drive it).
 */
export async function startTestHub(
  t: TestContext,
  opts: {
    clock?: Clock;
    dataDir?: string;
    env?: NodeJS.ProcessEnv;
    tls?: boolean;
    config?: Record<string, unknown>;
    logLevel?: string;
    /** postgres:// URL: the store lives there (hubs sharing one need one CERTFLEET_MASTER_KEY in `env`). */
    databaseUrl?: string;
  } = {},
): Promise<TestHub> {
  const dataDir = opts.dataDir ?? join(await tempDir(t), 'data');
  const token = `cfa_test_${randomBytes(16).toString('hex')}`;
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const hub = await startHub({
    dataDir,
    listen: '127.0.0.1:0',
    ...(opts.tls === false ? { tls: false } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}),
    config: hubConfigSchema.parse({ planner: { enabled: false }, ...opts.config }),
    logger: createLogger({ level: opts.logLevel ?? 'debug', destination }),
    env: { CERTFLEET_ADMIN_TOKEN: token, ...opts.env },
    checkResponses: true,
  });
  onCleanup(t, () => hub.close());
  return {
    ...hub,
    dataDir,
    token,
    logs,
    client: new HubClient({ hub: hub.url, token, caPem: hub.caPem }),
  };
}
