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

/** What is left of the staging directory `.certfleet-new` in `dir` (absent: nothing). */
const staging = async (dir: string) => (await readdir(dir)).filter((n) => n.startsWith('.certfleet-new'));

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
    assert.deepEqual(await staging(live), [], 'no staging directory left behind');

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
    assert.deepEqual(await staging(live), []);
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
    assert.deepEqual(await staging(live), []);
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

describe('ssh forced command: one session serves a whole deploy', () => {
  test('session 1: hello, then read, put, a failing and a passing config test, reload and remove, each answer framed by its nonce on both streams', async (t) => {
    const { live, conf } = await host(t);
    const path = join(live, 'cert.pem');
    await writeFile(
      conf,
      `allow ${live}\nconfig_test test -s ${path}\nreload echo reloaded; echo warm >&2\n`,
    );
    const requests = [
      `n1 read ${path}\n`,
      `n2 put\n`,
      encodePut([{ path, data: Buffer.from('new\n'), mode: 0o640 }]).toString('latin1'),
      `n3 run config_test 5\ntest -s ${path}\n`,
      `n4 run reload 5\necho reloaded; echo warm >&2\n`,
      `n5 remove ${path}\n`,
      `n6 run config_test 5\ntest -s ${path}\n`,
    ];
    const r = await forced(conf, 'session 1', requests.join(''));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout.toString(),
      [
        'certfleet-session 1',
        `absent ${path}`,
        'n1 0',
        'n2 0',
        'n3 0',
        'reloaded',
        'n4 0',
        'n5 0',
        'n6 1', // the config test's own exit status: the file is gone
        '',
      ].join('\n'),
    );
    assert.equal(r.stderr, 'n1\nn2\nn3\nwarm\nn4\nn5\nn6\n');
    await assert.rejects(readFile(path), /ENOENT/);
    assert.deepEqual(await staging(live), [], 'the staging directory is removed after the put');
  });

  test('a refused request ends the session with 64 and its reason; what follows is not served', async (t) => {
    const { root, live, conf } = await host(t);
    const r = await forced(
      conf,
      'session 1',
      `n1 read ${join(root, 'forced.conf')}\nn2 put\n${encodePut([{ path: join(live, 'a'), data: Buffer.from('x'), mode: 0o644 }]).toString('latin1')}`,
    );
    assert.equal(r.code, 64);
    assert.match(r.stderr, /not under an allowed directory/);
    assert.equal(r.stdout.toString(), 'certfleet-session 1\n', 'no answer, no file content');
    await assert.rejects(readFile(join(live, 'a')), /ENOENT/);
  });

  test('a session protocol it does not speak is refused with the fix', async (t) => {
    const { conf } = await host(t);
    const r = await forced(conf, 'session 2', 'n1 read /x\n');
    assert.equal(r.code, 64);
    assert.match(
      r.stderr,
      /session protocol 2 is not spoken here .*install the deploy\/certfleet-ssh-forced-command.sh/,
    );
    assert.equal(r.stdout.length, 0);
  });
});
