/**
 * `certfleet backup create|verify|restore` through the real binary: a backup taken while the hub runs and writes
 * is one consistent state, the standard `age` CLI opens it, verify restores it into a temporary directory and checks
 * every sealed item, and restore makes a private data directory the hub's own check passes. (Hubs on
 * CERTFLEET_MASTER_KEY: master-key-env.test.ts; passphrase backups: bad-keys.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ageIdentity } from '../helpers/age.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';

const exec = promisify(execFile);

/** runCli adds process.env; an undefined value keeps the variable out of the child's environment. */
const NO_MASTER_KEY_ENV = { CERTFLEET_MASTER_KEY: undefined };

interface Manifest {
  formatVersion: number;
  schema: { migrations: string[] };
  masterKeySource: string;
  counts: { certificates: number; versions: number; metaKeys: number; acmeAccounts: number };
  parts: Array<{ name: string; bytes: number; sha256: string }>;
}

describe('certfleet backup', () => {
  test('create while the hub writes → the age CLI opens it → verify passes → restore → check-store passes', async (t) => {
    const hub = await startTestHub(t);
    const work = await tempDir(t);
    const key = await ageIdentity(work);
    const hubConfig = join(work, 'hub.yaml');
    await writeFile(hubConfig, 'planner:\n  intervalSeconds: 120\n');
    for (const name of ['web', 'mail']) {
      await hub.client.post('/api/v1/certificates', { name, sans: [`${name}.internal.test`] });
    }

    // The hub keeps issuing while the snapshot is taken.
    const out = join(work, 'hub.age');
    const [created] = await Promise.all([
      runCli([
        'backup',
        'create',
        '--data-dir',
        hub.dataDir,
        '--out',
        out,
        '--recipient',
        key.recipient,
        '--hub-config',
        hubConfig,
        '--json',
      ]),
      (async () => {
        for (let i = 0; i < 5; i++) {
          await hub.client.post('/api/v1/certificates', {
            name: `busy-${i}`,
            sans: [`busy-${i}.internal.test`],
          });
        }
      })(),
    ]);
    assert.equal(created.code, 0, created.stderr);
    const { manifest } = JSON.parse(created.stdout) as { manifest: Manifest };
    const n = manifest.counts.certificates;
    assert.ok(n >= 2 && n <= 7, `a consistent point in the writes (${n} certificates)`);
    assert.equal(manifest.counts.versions, n, 'every certificate with its version: no half-written issuance');
    assert.equal((await stat(out)).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(work)).sort(), ['hub.age', 'hub.yaml', 'id.txt'], 'no temp file left');

    // The standard tool decrypts it: one JSON document whose manifest matches what create printed.
    const plain = await exec('age', ['-d', '-i', key.file, out], { maxBuffer: 64 << 20 });
    const doc = JSON.parse(plain.stdout) as {
      format: string;
      manifest: Manifest;
      parts: Record<string, string>;
    };
    assert.equal(doc.format, 'certfleet-backup');
    assert.deepEqual(doc.manifest, manifest);
    assert.deepEqual(manifest.parts.map((p) => p.name).sort(), ['hub.db', 'hub.yaml', 'master.key']);
    assert.equal(
      Buffer.from(doc.parts['hub.yaml'], 'base64').toString(),
      'planner:\n  intervalSeconds: 120\n',
    );
    assert.equal(manifest.masterKeySource, 'file');
    assert.equal(manifest.schema.migrations[0], '0001_initial');

    const verified = await runCli(['backup', 'verify', out, '--identity', key.file]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /ok\s+internal CA chain: the intermediate is signed by the root/);
    assert.match(verified.stdout, /ok\s+manifest: certificates\s+manifest\.counts\s+\d+, as recorded/);
    assert.match(
      verified.stdout,
      new RegExp(`${n} certificates, ${n} versions, 0 ACME accounts: all checks passed`),
    );
    assert.doesNotMatch(verified.stdout, /FAILED/);

    const target = join(work, 'restored', 'data');
    const restored = await runCli(['backup', 'restore', out, '--data-dir', target, '--identity', key.file]);
    assert.equal(restored.code, 0, restored.stdout + restored.stderr);
    assert.match(
      restored.stdout,
      new RegExp(`start the hub with: certfleet hub --data-dir ${target} --hub-config ${target}/hub.yaml`),
    );
    assert.equal((await stat(target)).mode & 0o777, 0o700);
    for (const f of await readdir(target)) {
      assert.equal((await stat(join(target, f))).mode & 0o777, 0o600, `${f} is 0600`);
    }
    assert.deepEqual(await readdir(join(work, 'restored')), ['data'], 'no staging directory left');
    const checked = await runCli(['hub', 'check-store', '--data-dir', target, '--json'], NO_MASTER_KEY_ENV);
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    assert.deepEqual(JSON.parse(checked.stdout).counts, manifest.counts);
  });

  test('create needs exactly one of --recipient and --passphrase-file (usage error, exit 2)', async (t) => {
    const work = await tempDir(t);
    const neither = await runCli(['backup', 'create', '--out', join(work, 'b.age'), '--data-dir', work]);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /either --recipient/);
    const bad = await runCli([
      'backup',
      'create',
      '--out',
      join(work, 'b.age'),
      '--data-dir',
      work,
      '--recipient',
      'age1nope',
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no hub data directory/, 'the data directory is checked first');
    assert.deepEqual(await readdir(work), [], 'nothing written');
  });
});
