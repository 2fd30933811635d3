/**
 * kill -9 the real `certfleet agent run` process at random moments while new versions keep arriving: on disk there
 * is never a half-written file, a cert/key pair that disagrees is always covered by a pending journal that the
 * next start completes, and after the last restart the pair matches the newest version with no leftovers.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { certMatchesKey, fingerprintOf, splitPemCertificates } from '../../src/pki/inspect.ts';
import { createPrivateKey } from 'node:crypto';
import { onCleanup } from '../helpers/cleanup.ts';
import { CLI } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';
import { createCertificate, enrollTestAgent, eventually, subscribe } from '../helpers/agent.ts';
import { tempDir } from '../helpers/tmp.ts';

const ITERATIONS = 12;

describe('agent killed with SIGKILL during deploys', () => {
  test('never leaves a half-written file or an unrecoverable cert/key mismatch', async (t) => {
    const hub = await startTestHub(t);
    const out = await tempDir(t, 'certfleet-kill-');
    await createCertificate(hub, 'web', ['web.test']);
    const agent = await enrollTestAgent(t, hub, 'web1');
    const subId = await subscribe(hub, 'web1', 'web', {
      outputs: [
        { path: join(out, 'fullchain.pem'), format: 'fullchain', mode: '0644' },
        { path: join(out, 'key.pem'), format: 'key', mode: '0600' },
      ],
    });
    const certId = (await hub.ctx.store.getCertificate('web'))!.id;
    let child: ChildProcess | undefined;
    const startAgent = () => {
      child = spawn(process.execPath, [CLI, 'agent', 'run', '--state-dir', agent.stateDir], {
        env: { ...process.env, CERTFLEET_LOG_LEVEL: 'silent' },
        stdio: 'ignore',
      });
      return child;
    };
    onCleanup(t, () => child?.kill('SIGKILL'));

    let killsDuringWrite = 0;
    let killsBeforeInstalled = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const proc = startAgent();
      const exited = new Promise((r) => proc.once('exit', r));
      const renewed = await hub.renewal.renewNow('web', 'test');
      // Pull the plug at moments spread from "just started" to "well into deploying": the first kills land before
      // any deploy can finish (the process is still starting), the later ones wherever the deploy then is, however
      // fast this machine starts the agent.
      await new Promise((r) => setTimeout(r, 30 + i * 130 + Math.floor(Math.random() * 100)));
      proc.kill('SIGKILL');
      await exited;
      if ((await hub.ctx.store.getDeployment(subId, renewed.id))?.state !== 'installed')
        killsBeforeInstalled++;

      const versions = await hub.ctx.store.listVersions(certId);
      const known = new Map(versions.map((v) => [v.fingerprint, v]));
      const files = await readdir(out);
      const journal = files.some((f) => f.startsWith('.certfleet-journal-'));
      if (!files.includes('fullchain.pem')) continue; // killed before the first write
      const chain = await readFile(join(out, 'fullchain.pem'), 'utf8');
      const key = await readFile(join(out, 'key.pem'), 'utf8');
      const certs = splitPemCertificates(chain);
      assert.ok(certs.length >= 2, `iteration ${i}: fullchain.pem is incomplete`);
      assert.ok(
        known.has(fingerprintOf(certs[0])),
        `iteration ${i}: fullchain.pem is not a version the hub issued`,
      );
      assert.doesNotThrow(() => createPrivateKey(key), `iteration ${i}: key.pem is not a complete key`);
      if (!certMatchesKey(certs[0], key)) {
        killsDuringWrite++;
        assert.ok(
          journal,
          `iteration ${i}: cert and key disagree and no journal records how to finish the write`,
        );
      }
    }
    t.diagnostic(
      `${ITERATIONS} kills: ${killsBeforeInstalled} before the new version was installed, ${killsDuringWrite} between the two renames`,
    );
    // The loop must really interrupt deploys, or it proves nothing (the renames themselves are covered, kill by
    // kill, in test/agent/atomic-write.test.ts).
    assert.ok(killsBeforeInstalled >= 2, 'too few kills interrupted a deploy');

    startAgent();
    const latest = (await hub.ctx.store.currentVersion(certId))!;
    await eventually(
      async () => (await hub.ctx.store.getDeployment(subId, latest.id))?.state === 'installed',
      30_000,
      'newest version installed after the last restart',
    );
    const chain = await readFile(join(out, 'fullchain.pem'), 'utf8');
    const key = await readFile(join(out, 'key.pem'), 'utf8');
    assert.equal(fingerprintOf(splitPemCertificates(chain)[0]), latest.fingerprint);
    assert.ok(certMatchesKey(chain, key), 'the pair on disk matches');
    const leftovers = (await readdir(out)).filter((f) => f.startsWith('.'));
    assert.deepEqual(leftovers, [], 'no temp or journal files remain');
  });
});
