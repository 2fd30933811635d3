/**
 * The agent runs as root; another local user must not be able to steer its writes. A real second system user
 * (created for this file, removed after it) pre-creates key files, owns symlinks and directories on the way to an
 * output, and the writes must refuse or ignore what they control.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, lchown, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { recoverPendingWrites, writeFilesAtomic } from '../../src/agent/atomic-write.ts';
import { deployLocally as deploy } from '../../src/agent/local-target.ts';
import { loadRecord } from '../../src/agent/local-records.ts';
import { decodePrevious } from '../../src/deploy/deploy-record.ts';
import { CertfleetError } from '../../src/core/errors.ts';
import { certMatchesKey } from '../../src/pki/inspect.ts';
import { fullchainOf, recorder, requestFor, subscriptionOf, NAMES } from '../deployer/helpers.ts';
import { makeTestPki } from '../helpers/test-pki.ts';
import { tempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);

/** useradd/userdel take a lock on /etc/passwd; another process on the machine may hold it for a moment. */
async function retrying(cmd: string, args: string[]): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await run(cmd, args)).stdout.trim();
    } catch (e) {
      if (attempt >= 10) throw e;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

const other = { name: `certfleet-t-${randomBytes(4).toString('hex')}`, uid: -1, gid: -1 };

before(async () => {
  assert.equal(process.getuid!(), 0, 'these tests create a system user and chown files: run them as root');
  await retrying('useradd', [
    '--system',
    '--no-create-home',
    '--user-group',
    '--shell',
    '/usr/sbin/nologin',
    other.name,
  ]);
  other.uid = Number(await retrying('id', ['-u', other.name]));
  other.gid = Number(await retrying('id', ['-g', other.name]));
});
after(async () => {
  await retrying('userdel', [other.name]);
  await run('groupdel', [other.name]).catch(() => {}); // userdel removes the user's group already on Debian
});

const ownerOf = async (p: string) => {
  const st = await stat(p);
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
};

/** What the given directory holds, names and contents, to prove nothing was touched. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) out[name] = await readFile(join(dir, name), 'utf8');
  return out;
}

const outputsIn = (dir: string) => [
  { path: join(dir, 'fullchain.pem'), format: 'fullchain' },
  { path: join(dir, 'db.key'), format: 'key' },
];

describe('owner and mode of outputs', () => {
  test('a key file pre-created by another user ends owned by the agent with mode 0600, not by that user', async (t) => {
    const dir = await tempDir(t);
    await chmod(dir, 0o755);
    // The other user got there first (say, through an earlier lax directory): their own files, world-readable.
    for (const name of ['db.key', 'fullchain.pem']) {
      await writeFile(join(dir, name), 'planted\n');
      await chown(join(dir, name), other.uid, other.gid);
      await chmod(join(dir, name), 0o666);
    }
    const pki = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    const res = await deploy(
      requestFor(pki.bundle, subscriptionOf({ outputs: outputsIn(dir) })),
      recorder().report,
      {
        stateDir: await tempDir(t),
      },
    );
    assert.equal(res.state, 'installed', JSON.stringify(res.detail));
    assert.deepEqual(await ownerOf(join(dir, 'db.key')), { uid: 0, gid: 0, mode: 0o600 });
    assert.deepEqual(await ownerOf(join(dir, 'fullchain.pem')), { uid: 0, gid: 0, mode: 0o644 });
    assert.ok(certMatchesKey(pki.bundle.certPem, await readFile(join(dir, 'db.key'), 'utf8')));
  });

  test("the subscription's owner and group are used when given, whatever owns the file on disk", async (t) => {
    const dir = await tempDir(t);
    await writeFile(join(dir, 'db.key'), 'old\n');
    await chown(join(dir, 'db.key'), 0, 0);
    const pki = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    const outputs = [{ path: join(dir, 'db.key'), format: 'key', owner: other.name, group: other.name }];
    const res = await deploy(requestFor(pki.bundle, subscriptionOf({ outputs })), recorder().report, {
      stateDir: await tempDir(t),
    });
    assert.equal(res.state, 'installed', JSON.stringify(res.detail));
    assert.deepEqual(await ownerOf(join(dir, 'db.key')), { uid: other.uid, gid: other.gid, mode: 0o600 });
  });
});

describe('directories on the way to an output', () => {
  test('a symlinked parent owned by another user is refused (deployment failed, old files untouched); once root owns the link it is followed', async (t) => {
    const base = await tempDir(t);
    await chmod(base, 0o755);
    const real = join(base, 'real');
    await mkdir(real, { mode: 0o755 });
    await writeFile(join(real, 'fullchain.pem'), 'old chain\n');
    await writeFile(join(real, 'db.key'), 'old key\n', { mode: 0o600 });
    const link = join(base, 'tls');
    await symlink(real, link);
    await lchown(link, other.uid, other.gid);
    const before = await snapshot(real);

    const pki = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    const req = requestFor(pki.bundle, subscriptionOf({ outputs: outputsIn(link) }));
    const rec = recorder();
    const stateDir = await tempDir(t);
    const res = await deploy(req, rec.report, { stateDir });
    assert.equal(res.state, 'failed');
    assert.equal(res.reason, 'write');
    assert.deepEqual(rec.states(), ['failed']);
    assert.equal(res.detail?.code, 'OUTPUT_WRITE_FAILED');
    assert.equal(
      res.detail?.message,
      `refusing to write under ${link}: it is a symlink owned by uid ${other.uid} (${other.name}), who could point it anywhere`,
    );
    assert.match(String(res.detail?.hint), new RegExp(`chown -h root ${link}`));
    assert.deepEqual(await snapshot(real), before, 'old files untouched, no temp or journal left');

    // The same link owned by root (as /etc/ssl/certs style links are) is an ordinary path.
    await lchown(link, 0, 0);
    const ok = await deploy(req, recorder().report, { stateDir });
    assert.equal(ok.state, 'installed', JSON.stringify(ok.detail));
    assert.equal(await readFile(join(real, 'fullchain.pem'), 'utf8'), fullchainOf(pki.bundle));
    assert.deepEqual(await ownerOf(join(real, 'db.key')), { uid: 0, gid: 0, mode: 0o600 });
  });

  test('a parent another user can write is refused, naming the directory and the fix; sticky or root-group directories are fine', async (t) => {
    const base = await tempDir(t);
    await chmod(base, 0o755);
    const cases: Array<{
      what: string;
      setup: (dir: string) => Promise<string>; // returns the output directory
      refused?: { component: (dir: string) => string; why: RegExp; hint: RegExp };
    }> = [
      {
        what: 'owned by the other user',
        setup: async (dir) => (await chown(dir, other.uid, other.gid), dir),
        refused: {
          component: (dir) => dir,
          why: new RegExp(`owned by uid ${other.uid} \\(${other.name}\\)`),
          hint: /chown root: .* or choose a directory only root/,
        },
      },
      {
        what: "group-writable by the other user's group",
        setup: async (dir) => (await chown(dir, 0, other.gid), await chmod(dir, 0o775), dir),
        refused: {
          component: (dir) => dir,
          why: new RegExp(`writable by group ${other.gid}`),
          hint: /chmod g-w/,
        },
      },
      {
        what: 'world-writable without the sticky bit',
        setup: async (dir) => (await chmod(dir, 0o777), dir),
        refused: { component: (dir) => dir, why: /writable by every user/, hint: /chmod o-w/ },
      },
      {
        what: 'a root directory inside one the other user owns',
        setup: async (dir) => {
          await chown(dir, other.uid, other.gid);
          await mkdir(join(dir, 'sub'), { mode: 0o755 });
          return join(dir, 'sub');
        },
        refused: { component: (dir) => dir, why: /owned by uid/, hint: /chown root/ },
      },
      {
        what: 'world-writable with the sticky bit (like /tmp)',
        setup: async (dir) => (await chmod(dir, 0o1777), dir),
      },
      { what: 'group-writable by root', setup: async (dir) => (await chmod(dir, 0o775), dir) },
    ];
    for (const [i, c] of cases.entries()) {
      const dir = join(base, `case-${i}`);
      await mkdir(dir, { mode: 0o755 });
      const outDir = await c.setup(dir);
      await writeFile(join(outDir, 'db.key'), 'old key\n', { mode: 0o600 });
      const write = writeFilesAtomic([
        { path: join(outDir, 'fullchain.pem'), data: 'new chain\n', mode: 0o644 },
        { path: join(outDir, 'db.key'), data: 'new key\n' },
      ]);
      if (!c.refused) {
        await write;
        assert.equal(await readFile(join(outDir, 'db.key'), 'utf8'), 'new key\n', c.what);
        continue;
      }
      await assert.rejects(write, (e: unknown) => {
        assert.ok(e instanceof CertfleetError, c.what);
        assert.equal(e.code, 'OUTPUT_WRITE_FAILED', c.what);
        assert.ok(e.message.startsWith(`refusing to write under ${c.refused!.component(dir)}: `), e.message);
        assert.match(e.message, c.refused!.why, c.what);
        assert.match(e.hint, c.refused!.hint, c.what);
        return true;
      });
      assert.deepEqual(await snapshot(outDir), { 'db.key': 'old key\n' }, `${c.what}: nothing written`);
    }
  });

  test("a refused write leaves the last version's deploy record, and the files it keeps for a rollback, alone", async (t) => {
    const dir = await tempDir(t);
    await writeFile(join(dir, 'db.key'), 'old key\n', { mode: 0o600 });
    const stateDir = await tempDir(t);
    const v1 = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    const sub = subscriptionOf({ outputs: outputsIn(dir) });
    const first = await deploy(requestFor(v1.bundle, sub), recorder().report, { stateDir });
    assert.equal(first.state, 'installed', JSON.stringify(first.detail));

    await chown(dir, other.uid, other.gid);
    const v2 = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    const refused = await deploy(requestFor(v2.bundle, sub), recorder().report, { stateDir });
    assert.equal(refused.state, 'failed');
    assert.match(String(refused.detail?.message), /refusing to write under .*: it is owned by uid/);

    const record = await loadRecord(stateDir, sub.id);
    assert.equal(record?.versionId, requestFor(v1.bundle, sub).versionId);
    assert.equal(record?.state, 'installed');
    const kept = decodePrevious(record!.previous).find((p) => p.path === join(dir, 'db.key'));
    assert.equal(kept?.previous.toString(), 'old key\n');
  });

  test('recovery does not replay or sweep in a directory another user controls', async (t) => {
    const dir = join(await tempDir(t), 'tls');
    await mkdir(dir, { mode: 0o755 });
    await chown(dir, other.uid, other.gid);
    const temp = join(dir, '.db.key.certfleet-tmp-0123456789abcdef');
    await writeFile(temp, 'planted\n');
    await assert.rejects(recoverPendingWrites(dir), /refusing to write under .*tls: it is owned by uid/);
    assert.equal(await readFile(temp, 'utf8'), 'planted\n');
  });
});
