import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Writable } from 'node:stream';
import type { Clock } from '../../src/core/clock.ts';
import { createLogger } from '../../src/core/log.ts';
import { HubClient } from '../../src/cli/client.ts';
import { hubConfigSchema } from '../../src/hub/hub-config.ts';
import { startHub, type RunningHub } from '../../src/hub/hub.ts';
import type { Pebble } from './pebble.ts';
import { tempDir } from './tmp.ts';

export interface AcmeTestHub extends RunningHub {
  dataDir: string;
  token: string;
  client: HubClient;
  logs: string[];
}

/** A random name under example.test, so pebble never reuses an authorization across tests. */
export const randomName = (prefix = '') => `${prefix}${randomBytes(5).toString('hex')}.example.test`;

/** Writes pebble's directory CA into a file for `caFile`. */
export async function pebbleCaFile(t: TestContext, pebble: Pebble): Promise<string> {
  const path = join(await tempDir(t), 'pebble-ca.pem');
  await writeFile(path, pebble.caPem);
  return path;
}

/** An ACME issuer entry for pebble with the hub's http-01 and challtestsrv (dns-01, for wildcards). */
export function pebbleIssuer(pebble: Pebble, caFile: string, extra: Record<string, unknown> = {}) {
  return {
    name: 'pebble',
    kind: 'acme',
    directoryUrl: pebble.directoryUrl,
    termsOfServiceAgreed: true,
    caFile,
    solvers: [{ kind: 'http-01' }, { kind: 'challtestsrv', managementUrl: pebble.challtestsrvUrl }],
    ...extra,
  };
}

/** A real in-process hub started with a hub config (validated like a file), planner off unless asked. */
export async function startAcmeHub(
  t: TestContext,
  config: Record<string, unknown>,
  opts: { clock?: Clock; env?: NodeJS.ProcessEnv } = {},
): Promise<AcmeTestHub> {
  const dataDir = join(await tempDir(t), 'data');
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
    config: hubConfigSchema.parse({ planner: { enabled: false }, ...config }),
    ...(opts.clock ? { clock: opts.clock } : {}),
    logger: createLogger({ level: 'info', destination }),
    env: { ...process.env, CERTFLEET_ADMIN_TOKEN: token, ...opts.env },
  });
  t.after(() => hub.close());
  return { ...hub, dataDir, token, logs, client: new HubClient({ hub: hub.url, token, caPem: hub.caPem }) };
}
