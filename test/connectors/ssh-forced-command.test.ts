/**
 * The forced command of the SSH connector (deploy/certfleet-ssh-forced-command.sh) run directly with the bytes the
 * hub's ssh target sends (src/connectors/ssh-wire.ts), as sshd would run it: SSH_ORIGINAL_COMMAND and stdin.
 * The end-to-end path through a real sshd is test/connectors/ssh-nginx.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodePut, parseRead, type PutFile } from '../../src/connectors/ssh-wire.ts';
import { tempDir } from '../helpers/tmp.ts';

const SCRIPT = join(import.meta.dirname, '..', '..', 'deploy', 'certfleet-ssh-forced-command.sh');

function forced(conf: string, request: string, stdin: Buffer | string = '') {
  return new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((resolve, reject) => {
    const child = spawn('/bin/sh', [SCRIPT, conf], { env: { SSH_ORIGINAL_COMMAND: request } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    // A refused request exits before reading its stdin: the write then fails with EPIPE, which is expected.
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}

async function host(t: Parameters<typeof tempDir>[0]) {
  const root = await tempDir(t);
  const live = join(root, 'live');
  await mkdir(join(live, 'sub'), { recursive: true });
  const conf = join(root, 'forced.conf');
  await writeFile(conf, `allow ${live}\nconfig_test test -d ${live}\nreload true\n`);
  return { root, live, conf };
}

/** Every byte value, so the printf escaping is proven on all of them. */
const ALL_BYTES = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));

describe('ssh forced command: batched read and put', () => {
  test('put places every file with its mode, byte-identical (all 256 byte values); read returns them in one answer', async (t) => {
    const { live, conf } = await host(t);
    const files: PutFile[] = [
      {
        path: join(live, 'fullchain.pem'),
        data: Buffer.from('-----BEGIN CERTIFICATE-----\nMII%s\\c\n'),
        mode: 0o644,
      },
      { path: join(live, 'privkey.pem'), data: ALL_BYTES, mode: 0o600 },
      { path: join(live, 'sub', 'bundle.p12'), data: Buffer.alloc(9000, 0), mode: 0o750 },
      { path: join(live, 'empty'), data: Buffer.alloc(0), mode: 0o640 },
    ];
    const put = await forced(conf, 'put', encodePut(files));
    assert.equal(put.code, 0, put.stderr);
    for (const f of files) {
      assert.ok((await readFile(f.path)).equals(f.data), `${f.path} byte-identical`);
      assert.equal((await stat(f.path)).mode & 0o7777, f.mode, `${f.path} mode`);
    }
    assert.deepEqual(await readdir(join(live, '.certfleet-new')), [], 'nothing left staged');

    const paths = [...files.map((f) => f.path), join(live, 'missing.pem')];
    const read = await forced(conf, `read ${paths.join(' ')}`);
    assert.equal(read.code, 0, read.stderr);
    const got = parseRead(paths, read.stdout);
    for (const [i, f] of files.entries()) {
      assert.ok(Buffer.isBuffer(got[i].previous) && got[i].previous.equals(f.data), `${f.path} read back`);
      assert.equal(got[i].mode, f.mode);
      assert.equal(got[i].uid, process.getuid!());
    }
    assert.equal(got[4].previous, 'absent');
  });

  test('an upload cut short renames nothing and leaves nothing staged', async (t) => {
    const { live, conf } = await host(t);
    const path = join(live, 'cert.pem');
    await writeFile(path, 'old');
    const stream = encodePut([
      { path, data: Buffer.from('new'), mode: 0o644 },
      { path: join(live, 'key.pem'), data: Buffer.from('new key'), mode: 0o600 },
    ]);
    const cut = await forced(conf, 'put', stream.subarray(0, stream.length - 'end\n'.length));
    assert.equal(cut.code, 64);
    assert.match(cut.stderr, /ended before its end line/);
    assert.equal(await readFile(path, 'utf8'), 'old');
    assert.deepEqual(await readdir(join(live, '.certfleet-new')), []);
  });

  test('a file outside the allowed directories, or reached through a symlink, refuses the whole put', async (t) => {
    const { root, live, conf } = await host(t);
    const path = join(live, 'cert.pem');
    await writeFile(path, 'old');
    await symlink(live, join(root, 'link'));
    for (const outside of [join(root, 'elsewhere.pem'), join(root, 'link', 'cert.pem'), `${live}/../x.pem`]) {
      const r = await forced(
        conf,
        'put',
        encodePut([
          { path, data: Buffer.from('new'), mode: 0o644 },
          { path: outside, data: Buffer.from('x'), mode: 0o644 },
        ]),
      );
      assert.equal(r.code, 64, outside);
      assert.match(r.stderr, /not under an allowed directory|through a symlink|canonical/);
      assert.equal(await readFile(path, 'utf8'), 'old', 'nothing renamed');
    }
    assert.deepEqual(await readdir(join(live, '.certfleet-new')), []);
    const read = await forced(conf, `read ${join(root, 'forced.conf')}`);
    assert.equal(read.code, 64);
    assert.equal(read.stdout.length, 0, 'nothing outside the allowed directories is read');
  });

  test('run accepts only the configured command lines; other requests are refused', async (t) => {
    const { live, conf } = await host(t);
    assert.equal((await forced(conf, 'run config_test 5', `test -d ${live}\n`)).code, 0);
    const other = await forced(conf, 'run config_test 5', 'id\n');
    assert.equal(other.code, 64);
    assert.match(other.stderr, /is not the configured one/);
    for (const request of ['stage /x 644 - -', 'sh -c id', 'rsync --server .']) {
      assert.equal((await forced(conf, request)).code, 64, request);
    }
  });
});
