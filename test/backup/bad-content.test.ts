/**
 * Backups that decrypt but must not restore, and a target that exists, through the real binary: a backup from a
 * newer schema, a backup whose master key does not open its store (each refused with a hint, nothing restored), and
 * a non-empty target (refused; with --force kept aside, never deleted). The source hub is untouched throughout.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { backupFixture, rewriteBackup } from '../helpers/backup.ts';
import { runCli } from '../helpers/cli.ts';

test('a newer schema, a wrong master key, an existing target: refused with hints; the source hub untouched', async (t) => {
  const { hub, work, key, good, write, refused } = await backupFixture(t);
  const eventsBefore = await hub.ctx.store.listEvents({ limit: 1000 });
  const id = ['--identity', key.file];

  const newer = await rewriteBackup(good, key, async (manifest, dir) => {
    const db = new Database(join(dir, 'hub.db'));
    db.prepare('INSERT INTO kysely_migration (name, timestamp) VALUES (?, ?)').run(
      '9999_from_the_future',
      new Date().toISOString(),
    );
    db.close();
    manifest.schema.migrations.push('9999_from_the_future');
    manifest.certfleetVersion = '99.0.0';
  });
  await refused(
    await write('newer.age', newer),
    id,
    /is from a newer schema \(certfleet 99\.0\.0: migration 9999_from_the_future unknown to certfleet/,
    /hint: restore it with certfleet 99\.0\.0 or newer/,
  );

  const wrongKey = await rewriteBackup(good, key, async (_manifest, dir) => {
    await writeFile(join(dir, 'master.key'), `${randomBytes(32).toString('hex')}\n`);
  });
  await refused(await write('wrongkey.age', wrongKey), id, /the master key does not open/, /hint: /);

  const target = join(work, 'existing');
  await mkdir(target);
  await writeFile(join(target, 'keep-me'), 'precious');
  const r = await runCli(['backup', 'restore', good, '--data-dir', target, ...id]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the data directory .*existing is not empty; nothing was restored/);
  assert.match(r.stderr, /hint: restore into a new directory, or pass --force/);
  assert.deepEqual(await readdir(target), ['keep-me']);
  const forced = await runCli(['backup', 'restore', good, '--data-dir', target, ...id, '--force']);
  assert.equal(forced.code, 0, forced.stdout + forced.stderr);
  const aside = (await readdir(work)).filter((f) => f.startsWith('existing.before-restore-'));
  assert.equal(aside.length, 1, 'the old directory is kept aside');
  assert.equal(await readFile(join(work, aside[0], 'keep-me'), 'utf8'), 'precious');
  assert.deepEqual((await readdir(target)).sort(), ['hub.db', 'master.key']);

  assert.deepEqual(
    await hub.ctx.store.listEvents({ limit: 1000 }),
    eventsBefore,
    'the source hub is untouched',
  );
  assert.equal((await hub.client.get<unknown[]>('/api/v1/certificates')).length, 1, 'and still serving');
});
