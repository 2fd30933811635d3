/**
 * Backups that must not restore, through the real binary: the wrong identity or passphrase, a truncated file, a
 * flipped byte, a backup from a newer schema, a backup whose master key does not open its store, and a target that
 * exists. Each is a clear error with a hint and no stack trace; nothing is half-restored (no target, no staging
 * directory); the source hub keeps running untouched.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { encryptBackup } from '../../src/backup/age-crypt.ts';
import { encodeBackup, type BackupManifest } from '../../src/backup/backup-format.ts';
import { ageIdentity } from '../helpers/age.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';

const exec = promisify(execFile);

describe('backups that must not restore', () => {
  test('each bad input is a clear error with a hint; nothing is restored; the source hub is untouched', async (t) => {
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.internal.test'] });
    const work = await tempDir(t);
    const key = await ageIdentity(work);
    const stranger = await ageIdentity(work, 'stranger.txt');
    const good = join(work, 'good.age');
    const made = await runCli([
      'backup',
      'create',
      '--data-dir',
      hub.dataDir,
      '--out',
      good,
      '--recipient',
      key.recipient,
    ]);
    assert.equal(made.code, 0, made.stderr);
    const bytes = await readFile(good);
    const eventsBefore = await hub.ctx.store.listEvents({ limit: 1000 });

    const restoreRoot = join(work, 'restores');
    await mkdir(restoreRoot);
    /** Restores `file` into a new directory under restoreRoot and expects a refusal that leaves nothing behind. */
    const refused = async (file: string, keyArgs: string[], message: RegExp, hint: RegExp): Promise<void> => {
      const target = join(restoreRoot, `t-${randomBytes(3).toString('hex')}`);
      const r = await runCli(['backup', 'restore', file, '--data-dir', target, ...keyArgs]);
      assert.equal(r.code, 1, `${file}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
      assert.match(r.stderr, hint);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.deepEqual(await readdir(restoreRoot), [], 'no target and no staging directory left');
      const v = await runCli(['backup', 'verify', file, ...keyArgs]);
      assert.equal(v.code, 1);
      assert.match(v.stderr, message, 'verify refuses it the same way');
    };
    const write = async (name: string, data: Uint8Array) => {
      const path = join(work, name);
      await writeFile(path, data);
      return path;
    };

    await t.test('the wrong identity', () =>
      refused(
        good,
        ['--identity', stranger.file],
        /the identity does not open backup good\.age/,
        /hint: use the identity file of a recipient/,
      ),
    );

    await t.test('the wrong passphrase, or a passphrase for a recipient backup', async () => {
      const pass = await write('pass', Buffer.from('right one\n'));
      const wrong = await write('wrong', Buffer.from('wrong one\n'));
      const byPass = join(work, 'pass.age');
      const r = await runCli([
        'backup',
        'create',
        '--data-dir',
        hub.dataDir,
        '--out',
        byPass,
        '--passphrase-file',
        pass,
      ]);
      assert.equal(r.code, 0, r.stderr);
      await refused(
        byPass,
        ['--passphrase-file', wrong],
        /the passphrase does not open backup pass\.age/,
        /hint: use the passphrase file/,
      );
      await refused(good, ['--passphrase-file', pass], /the passphrase does not open/, /hint: .*--identity/);
    });

    await t.test('a truncated file', async () => {
      const cut = await write('cut.age', bytes.subarray(0, Math.floor(bytes.length / 2)));
      await refused(
        cut,
        ['--identity', key.file],
        /backup cut\.age is damaged or not an age file/,
        /hint: the file was truncated or modified/,
      );
      const headerOnly = await write('header.age', bytes.subarray(0, 60));
      await refused(headerOnly, ['--identity', key.file], /damaged or not an age file/, /hint: /);
    });

    await t.test('one flipped byte, in the payload and in the header', async () => {
      for (const at of [Math.floor(bytes.length / 2), 30]) {
        const flipped = Buffer.from(bytes);
        flipped[at] ^= 0x01;
        const file = await write(`flip-${at}.age`, flipped);
        await refused(
          file,
          ['--identity', key.file],
          /is damaged or not an age file|does not open/,
          /hint: /,
        );
      }
    });

    await t.test('a backup from a newer schema', async () => {
      const newer = await rewrite(good, key, async (manifest, dir) => {
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
        ['--identity', key.file],
        /is from a newer schema \(certfleet 99\.0\.0: migration 9999_from_the_future unknown to certfleet/,
        /hint: restore it with certfleet 99\.0\.0 or newer/,
      );
    });

    await t.test('a backup whose master key does not open its store', async () => {
      const wrongKey = await rewrite(good, key, async (_manifest, dir) => {
        await writeFile(join(dir, 'master.key'), `${randomBytes(32).toString('hex')}\n`);
      });
      await refused(
        await write('wrongkey.age', wrongKey),
        ['--identity', key.file],
        /the master key does not open/,
        /hint: /,
      );
    });

    await t.test('a target that is not empty: refused; with --force moved aside, not deleted', async () => {
      const target = join(work, 'existing');
      await mkdir(target);
      await writeFile(join(target, 'keep-me'), 'precious');
      const r = await runCli(['backup', 'restore', good, '--data-dir', target, '--identity', key.file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the data directory .*existing is not empty; nothing was restored/);
      assert.match(r.stderr, /hint: restore into a new directory, or pass --force/);
      assert.deepEqual(await readdir(target), ['keep-me']);

      const forced = await runCli([
        'backup',
        'restore',
        good,
        '--data-dir',
        target,
        '--identity',
        key.file,
        '--force',
      ]);
      assert.equal(forced.code, 0, forced.stdout + forced.stderr);
      const aside = (await readdir(work)).filter((f) => f.startsWith('existing.before-restore-'));
      assert.equal(aside.length, 1);
      assert.equal(await readFile(join(work, aside[0], 'keep-me'), 'utf8'), 'precious');
      assert.deepEqual((await readdir(target)).sort(), ['hub.db', 'master.key']);
    });

    await t.test('the source hub kept running, its store unchanged', async () => {
      const certs = await hub.client.get<Array<{ name: string }>>('/api/v1/certificates');
      assert.deepEqual(
        certs.map((c) => c.name),
        ['web'],
      );
      assert.deepEqual(await hub.ctx.store.listEvents({ limit: 1000 }), eventsBefore);
    });
  });
});

/** Decrypts a backup with the age CLI, lets `edit` change its files and manifest, and encrypts it again. */
async function rewrite(
  file: string,
  key: { file: string; recipient: string },
  edit: (manifest: BackupManifest, dir: string) => Promise<void>,
): Promise<Uint8Array> {
  const { stdout } = await exec('age', ['-d', '-i', key.file, file], { maxBuffer: 64 << 20 });
  const doc = JSON.parse(stdout) as { manifest: BackupManifest; parts: Record<string, string> };
  const dir = join(file, '..', `edit-${randomBytes(3).toString('hex')}`);
  await mkdir(dir);
  for (const [name, b64] of Object.entries(doc.parts))
    await writeFile(join(dir, name), Buffer.from(b64, 'base64'));
  const { parts: _parts, formatVersion: _v, ...manifest } = doc.manifest;
  await edit(manifest as BackupManifest, dir);
  const parts = Object.fromEntries(
    await Promise.all(Object.keys(doc.parts).map(async (name) => [name, await readFile(join(dir, name))])),
  );
  return encryptBackup(encodeBackup(manifest, parts).payload, { recipients: [key.recipient] });
}
