import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { encryptBackup } from '../../src/backup/age-crypt.ts';
import { encodeBackup, type BackupManifest } from '../../src/backup/backup-format.ts';
import { ageIdentity } from './age.ts';
import { runCli } from './cli.ts';
import { startTestHub, type TestHub } from './hub.ts';
import { tempDir } from './tmp.ts';

const exec = promisify(execFile);

export interface BackupFixture {
  hub: TestHub;
  work: string;
  key: { file: string; recipient: string };
  /** A good backup of `hub` (one internal-CA certificate), encrypted to `key`. */
  good: string;
  /** Writes `data` into the work directory and returns its path. */
  write(name: string, data: Uint8Array | string): Promise<string>;
  /**
   * Restores `file` into a new directory and verifies it, both through the real binary, and expects each to refuse
   * with `message` (restore also with `hint`), no stack trace, and nothing left behind: no target, no staging dir.
   */
  refused(file: string, keyArgs: string[], message: RegExp, hint: RegExp): Promise<void>;
}

/** A running hub with one certificate, an age identity and a good backup made by `certfleet backup create`. */
export async function backupFixture(t: TestContext): Promise<BackupFixture> {
  const hub = await startTestHub(t);
  await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.internal.test'] });
  const work = await tempDir(t);
  const key = await ageIdentity(work);
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
  const restoreRoot = join(work, 'restores');
  await mkdir(restoreRoot);
  const write = async (name: string, data: Uint8Array | string) => {
    const path = join(work, name);
    await writeFile(path, data);
    return path;
  };
  const refused = async (file: string, keyArgs: string[], message: RegExp, hint: RegExp) => {
    const target = join(restoreRoot, `t-${randomBytes(3).toString('hex')}`);
    const [r, v] = await Promise.all([
      runCli(['backup', 'restore', file, '--data-dir', target, ...keyArgs]),
      runCli(['backup', 'verify', file, ...keyArgs]),
    ]);
    assert.equal(r.code, 1, `${file}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, hint);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.deepEqual(await readdir(restoreRoot), [], 'no target and no staging directory left');
    assert.equal(v.code, 1);
    assert.match(v.stderr, message, 'verify refuses it the same way');
  };
  return { hub, work, key, good, write, refused };
}

/** Decrypts a backup with the age CLI, lets `edit` change its files and manifest, and encrypts it again. */
export async function rewriteBackup(
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
