import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { systemClock } from '../../src/core/clock.ts';
import { createLogger } from '../../src/core/log.ts';
import { hubConfigSchema } from '../../src/hub/hub-config.ts';
import { startHub } from '../../src/hub/hub.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';
import { pebbleCaFile, randomName } from '../helpers/acme-hub.ts';
import { startPebble } from '../helpers/pebble.ts';
import { tempDir } from '../helpers/tmp.ts';
import { onCleanup } from '../helpers/cleanup.ts';

/** Resolves with the file's content once it exists (the hook has started). */
async function waitForFile(path: string): Promise<string> {
  for (let i = 0; i < 1200; i++) {
    const text = await readFile(path, 'utf8').catch(() => '');
    if (text.trim()) return text.trim();
    await delay(50);
  }
  assert.fail(`${path} never appeared`);
}

const running = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('hub.close() aborts an ACME order in flight: the order rejects with an abort, the hub closes', async (t) => {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const dir = await tempDir(t);
  const dataDir = join(dir, 'data');
  const pidFile = join(dir, 'hook.pid');
  const hub = await startHub({
    dataDir,
    listen: '127.0.0.1:0',
    config: hubConfigSchema.parse({
      planner: { enabled: false },
      issuers: [
        {
          name: 'hang',
          kind: 'acme',
          directoryUrl: pebble.directoryUrl,
          termsOfServiceAgreed: true,
          caFile: await pebbleCaFile(t, pebble),
          // A dns-01 hook that never finishes (its own timeout is an hour away).
          solvers: [
            { kind: 'exec', authCommand: `echo $$ > ${pidFile}; exec sleep 3600`, timeoutSeconds: 3600 },
          ],
        },
      ],
    }),
    logger: createLogger({ level: 'silent' }),
    env: { CERTFLEET_ADMIN_TOKEN: 'cfa_test_shutdown_0123456789abcdef' },
  });
  let closed = false;
  onCleanup(t, async () => {
    if (!closed) await hub.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const name = randomName('hang-');
  const order = hub.certificates.create(
    { name: 'hang', sans: [name], keyType: 'ecdsa-p256', issuer: 'hang', lifetimeDays: 90 },
    'admin:test',
  );
  const outcome = order.then(
    () => assert.fail('the order finished'),
    (e: Error) => e,
  );
  const hookPid = Number(await waitForFile(pidFile));
  assert.ok(running(hookPid), 'the order is waiting in the solver hook');

  await hub.close();
  closed = true;
  const error = await outcome;
  assert.equal(error.name, 'AbortError', String(error));
  assert.equal(running(hookPid), false, 'the hook process was killed');
  assert.equal(hub.app.server.listening, false, 'the API is closed');

  // Nothing half-made: no certificate, only the failed attempt on record.
  const store = await openSqliteStore(join(dataDir, 'hub.db'), systemClock);
  try {
    assert.equal(await store.getCertificate('hang'), undefined);
    assert.deepEqual(
      (await store.listEvents({ subject: 'certificate:hang' })).map((e) => e.kind),
      ['version.issue_failed'],
    );
  } finally {
    await store.close();
  }
});
