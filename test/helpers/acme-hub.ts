import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Clock } from '../../src/core/clock.ts';
import { startTestHub, type TestHub } from './hub.ts';
import type { Pebble } from './pebble.ts';
import { tempDir } from './tmp.ts';

export type AcmeTestHub = TestHub;

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

/** The config of a hub whose one issuer is pebble, answering http-01 on the port pebble's VA asks. */
export async function pebbleHubConfig(t: TestContext, pebble: Pebble) {
  return {
    issuers: [pebbleIssuer(pebble, await pebbleCaFile(t, pebble))],
    http01: { listen: `127.0.0.1:${pebble.httpPort}` },
  };
}

/** A real in-process hub started with a hub config (validated like a file), planner off unless asked. */
export function startAcmeHub(
  t: TestContext,
  config: Record<string, unknown>,
  opts: { clock?: Clock; env?: NodeJS.ProcessEnv } = {},
): Promise<AcmeTestHub> {
  return startTestHub(t, {
    config,
    logLevel: 'info',
    env: { ...process.env, ...opts.env },
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
}
