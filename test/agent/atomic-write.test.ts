import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import {
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  writeFile,
  chmod,
  chown,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  recoverPendingWrites,
  restoreFiles,
  writeFileAtomic,
  writeFilesAtomic,
} from '../../src/agent/atomic-write.ts';
import { CertfleetError } from '../../src/core/errors.ts';
import { certMatchesKey } from '../../src/pki/inspect.ts';
import { onCleanup, suiteCleanup } from '../helpers/cleanup.ts';
import { makeTestPki } from '../helpers/test-pki.ts';

const NOBODY = 65534; // Debian: user nobody, group nogroup
const CHILD = new URL('./fixtures/atomic-write-child.ts', import.meta.url).pathname;

let root: string;
let n = 0;
const atEnd = suiteCleanup();
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'certfleet-atomic-'));
  atEnd(() => rm(root, { recursive: true, force: true }));
});

async function freshDir(): Promise<string> {
  const dir = join(root, `case-${n++}`);
  await mkdir(dir);
  return dir;
}

/** Our temp files and journals: none may be left after any write, failed or not. */
async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.includes('.certfleet-'));
}

const modeOf = async (p: string) => (await stat(p)).mode & 0o7777;

describe('writeFileAtomic', () => {
  test('writes the data with the requested mode, owner and group (names resolved)', async () => {
    const dir = await freshDir();
    const p = join(dir, 'key.pem');
    await writeFileAtomic(p, 'secret\n', { mode: 0o640, owner: 'nobody', group: 'nogroup' });
    assert.equal(await readFile(p, 'utf8'), 'secret\n');
    const st = await stat(p);
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.uid, NOBODY);
    assert.equal(st.gid, NOBODY);
    assert.deepEqual(await leftovers(dir), []);
  });

  test('numeric ids work, and a new file defaults to 0600 whatever the umask', async () => {
    const dir = await freshDir();
    const p = join(dir, 'a');
    const old = process.umask(0);
    try {
      await writeFileAtomic(p, Buffer.from([1, 2, 3]));
    } finally {
      process.umask(old);
    }
    assert.equal(await modeOf(p), 0o600);
    await writeFileAtomic(p, 'x', { owner: NOBODY, group: '65534' });
    assert.equal((await stat(p)).uid, NOBODY);
    assert.equal((await stat(p)).gid, NOBODY);
  });

  test('replacing never takes mode, owner or group from the file on disk: the agent user and 0600', async () => {
    const dir = await freshDir();
    const p = join(dir, 'cert.pem');
    await writeFile(p, 'old');
    await chmod(p, 0o644);
    await chown(p, NOBODY, NOBODY);
    await writeFileAtomic(p, 'new');
    const st = await stat(p);
    assert.equal(await readFile(p, 'utf8'), 'new');
    assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [0o600, process.getuid!(), process.getgid!()]);
  });

  test('an unknown owner fails before anything is replaced: old file intact, no temp left', async () => {
    const dir = await freshDir();
    const p = join(dir, 'key.pem');
    await writeFile(p, 'old');
    await chmod(p, 0o600);
    await assert.rejects(writeFileAtomic(p, 'new', { owner: 'no-such-user-cf' }), (e: unknown) => {
      assert.ok(e instanceof CertfleetError);
      assert.equal(e.message, 'unknown user "no-such-user-cf" on this host');
      assert.match(e.hint, /useradd/);
      return true;
    });
    await assert.rejects(
      writeFileAtomic(p, 'new', { group: 'no-such-group-cf' }),
      /unknown group "no-such-group-cf"/,
    );
    assert.equal(await readFile(p, 'utf8'), 'old');
    assert.equal(await modeOf(p), 0o600);
    assert.deepEqual(await leftovers(dir), []);
  });

  test('a missing directory, an invalid mode and a symlink target are clear errors', async () => {
    const dir = await freshDir();
    await assert.rejects(writeFileAtomic(join(dir, 'nope', 'x'), 'a'), (e: unknown) => {
      assert.ok(e instanceof CertfleetError);
      assert.equal(e.code, 'OUTPUT_WRITE_FAILED');
      assert.match(e.message, /cannot write .*nope\/x \(ENOENT\)/);
      assert.match(e.hint, /create the directory/);
      return true;
    });
    await assert.rejects(writeFileAtomic(join(dir, 'x'), 'a', { mode: 0o10000 }), /invalid mode/);
    await writeFile(join(dir, 'real'), 'r');
    await symlink(join(dir, 'real'), join(dir, 'link'));
    await assert.rejects(writeFileAtomic(join(dir, 'link'), 'a'), /not a regular file/);
    assert.equal(await readFile(join(dir, 'real'), 'utf8'), 'r');
    assert.deepEqual(await leftovers(dir), []);
  });

  test('an aborted signal leaves the old file and no temp', async () => {
    const dir = await freshDir();
    const p = join(dir, 'f');
    await writeFile(p, 'old');
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(writeFileAtomic(p, 'new', { signal: ac.signal }), { name: 'AbortError' });
    assert.equal(await readFile(p, 'utf8'), 'old');
    assert.deepEqual(await leftovers(dir), []);
  });
});

describe('writeFilesAtomic', () => {
  test('returns what was there before; restoreFiles puts back content, mode, owner and absence', async () => {
    const dir = await freshDir();
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    await writeFile(cert, 'old cert');
    await chmod(cert, 0o644);
    await chown(cert, NOBODY, NOBODY);
    const previous = await writeFilesAtomic([
      { path: cert, data: 'new cert', mode: 0o600, owner: 0, group: 0 },
      { path: key, data: 'new key', mode: 0o600 },
    ]);
    assert.deepEqual(
      previous.map((p) => [
        p.path,
        p.previous === 'absent' ? 'absent' : p.previous.toString(),
        p.mode,
        p.uid,
      ]),
      [
        [cert, 'old cert', 0o644, NOBODY],
        [key, 'absent', undefined, undefined],
      ],
    );
    assert.equal(await readFile(key, 'utf8'), 'new key');
    assert.equal((await stat(cert)).uid, 0);
    await restoreFiles(previous);
    assert.equal(await readFile(cert, 'utf8'), 'old cert');
    const st = await stat(cert);
    assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [0o644, NOBODY, NOBODY]);
    await assert.rejects(stat(key), { code: 'ENOENT' });
    assert.deepEqual(await leftovers(dir), []);
  });

  test('a failure while preparing the second file leaves BOTH old files and no temps', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'cert.pem'), 'old cert');
    await writeFile(join(dir, 'key.pem'), 'old key');
    await assert.rejects(
      writeFilesAtomic([
        { path: join(dir, 'cert.pem'), data: 'new cert' },
        { path: join(dir, 'key.pem'), data: 'new key', owner: 'no-such-user-cf' },
      ]),
      /unknown user/,
    );
    assert.equal(await readFile(join(dir, 'cert.pem'), 'utf8'), 'old cert');
    assert.equal(await readFile(join(dir, 'key.pem'), 'utf8'), 'old key');
    assert.deepEqual(await leftovers(dir), []);
  });

  test('owner and mode are already set when a file appears under its name', async () => {
    const dir = await freshDir();
    const seen: Array<[number, number]> = [];
    const { statSync } = await import('node:fs');
    await writeFilesAtomic(
      [
        { path: join(dir, 'a'), data: 'a', mode: 0o640, owner: 'nobody' },
        { path: join(dir, 'b'), data: 'b', mode: 0o604, group: 'nogroup' },
      ],
      {
        onRenamed: (_i, p) => {
          const st = statSync(p);
          seen.push([st.mode & 0o7777, _i === 0 ? st.uid : st.gid]);
        },
      },
    );
    assert.deepEqual(seen, [
      [0o640, NOBODY],
      [0o604, NOBODY],
    ]);
  });

  test('the same path twice is refused', async () => {
    const dir = await freshDir();
    const p = join(dir, 'x');
    await assert.rejects(
      writeFilesAtomic([
        { path: p, data: '1' },
        { path: `${dir}/./x`, data: '2' },
      ]),
      /listed twice/,
    );
    // The same file reached through a (root-owned) symlinked directory is the same output too.
    await mkdir(join(dir, 'real'));
    await symlink(join(dir, 'real'), join(dir, 'via'));
    await assert.rejects(
      writeFilesAtomic([
        { path: join(dir, 'real', 'x'), data: '1' },
        { path: join(dir, 'via', 'x'), data: '2' },
      ]),
      /via\/x is the same file as another output/,
    );
    assert.deepEqual(await leftovers(join(dir, 'real')), []);
  });
});

describe('crash safety', () => {
  let gensFile: string;
  let gens: Array<{ cert: string; key: string }>;

  before(async () => {
    // Four distinct generations; an RSA key makes the key file several KB, so a torn write would show.
    const pkis = await Promise.all(
      (['rsa-2048', 'ecdsa-p256', 'rsa-2048', 'ecdsa-p384'] as const).map((k) => makeTestPki(k)),
    );
    gens = pkis.map((p) => ({ cert: p.bundle.certPem, key: p.bundle.keyPem }));
    gensFile = join(root, 'generations.json');
    await writeFile(gensFile, JSON.stringify(gens));
  });

  /** Starts the child, resolves once it printed "ready"; the returned promise resolves on its exit. */
  async function startChild(dir: string, mode: string) {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, gensFile, mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<NodeJS.Signals | number | null>((res) =>
      child.on('exit', (code, signal) => res(signal ?? code)),
    );
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (d) => String(d).includes('ready') && res());
      exited.then((how) => rej(new Error(`child exited (${how}) before ready: ${stderr}`)));
    });
    return { child, exited };
  }

  /** Which generation a file's bytes are from; fails on anything that is not one complete generation. */
  async function generationOf(path: string, kind: 'cert' | 'key'): Promise<number> {
    const bytes = await readFile(path, 'utf8');
    const g = gens.findIndex((x) => x[kind] === bytes);
    assert.ok(g >= 0, `${path} is not a complete file of any generation (${bytes.length} bytes)`);
    if (kind === 'cert') new X509Certificate(bytes);
    else createPrivateKey(bytes);
    return g;
  }

  test('SIGKILL at random moments: every file is always whole, and recovery leaves a matching pair', async (t) => {
    const ITERATIONS = 36;
    const dir = await freshDir();
    let mismatchedBeforeRecovery = 0;
    let pendingJournals = 0;
    let sweptTemps = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const { child, exited } = await startChild(dir, 'loop');
      onCleanup(t, () => child.kill('SIGKILL'));
      await new Promise((r) => setTimeout(r, Math.random() * 40));
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');
      // Right after the crash, before any recovery: each file complete, from some generation.
      const certGen = await generationOf(join(dir, 'cert.pem'), 'cert');
      const keyGen = await generationOf(join(dir, 'key.pem'), 'key');
      if (certGen !== keyGen) mismatchedBeforeRecovery++;
      const r = await recoverPendingWrites(dir);
      pendingJournals += r.replayed;
      sweptTemps += r.removedTemps;
      assert.deepEqual(await leftovers(dir), []);
      const after = await generationOf(join(dir, 'cert.pem'), 'cert');
      assert.equal(await generationOf(join(dir, 'key.pem'), 'key'), after, `iteration ${i}: pair mismatched`);
      assert.ok(certMatchesKey(gens[after].cert, gens[after].key));
      assert.equal(await modeOf(join(dir, 'key.pem')), 0o600);
    }
    t.diagnostic(
      `${ITERATIONS} kills: ${pendingJournals} journals replayed, ${sweptTemps} temps swept, ` +
        `${mismatchedBeforeRecovery} pairs mismatched before recovery (all matched after)`,
    );
    // The kills must actually land mid-write, or this test would prove nothing.
    assert.ok(pendingJournals + sweptTemps > 0, 'no kill interrupted a write');
  });

  test('a crash between the two renames is rolled forward by recoverPendingWrites', async () => {
    const dir = await freshDir();
    const { exited } = await startChild(dir, 'crash-after-first');
    assert.equal(await exited, 'SIGKILL');
    assert.equal(await generationOf(join(dir, 'cert.pem'), 'cert'), 1, 'cert already renamed');
    assert.equal(await generationOf(join(dir, 'key.pem'), 'key'), 0, 'key not yet');
    assert.equal((await leftovers(dir)).filter((f) => f.startsWith('.certfleet-journal-')).length, 1);
    assert.deepEqual(await recoverPendingWrites(dir), { replayed: 1, removedTemps: 0 });
    assert.equal(await generationOf(join(dir, 'key.pem'), 'key'), 1);
    assert.equal(await modeOf(join(dir, 'key.pem')), 0o600, 'the replayed file has its final mode');
    assert.deepEqual(await leftovers(dir), []);
    assert.deepEqual(await recoverPendingWrites(dir), { replayed: 0, removedTemps: 0 }, 'idempotent');
  });

  test('recovery across directories: journal in one, key in another, swept in one call', async () => {
    const dir = await freshDir();
    await mkdir(join(dir, 'keys'));
    const { exited } = await startChild(dir, 'crash-split');
    assert.equal(await exited, 'SIGKILL');
    assert.equal(await generationOf(join(dir, 'keys', 'key.pem'), 'key'), 0);
    assert.equal((await leftovers(join(dir, 'keys'))).length, 1, 'the new key waits as a temp');
    // Listing the key directory first must not sweep the temp the journal still needs.
    await recoverPendingWrites([join(dir, 'keys'), dir]);
    assert.equal(await generationOf(join(dir, 'cert.pem'), 'cert'), 1);
    assert.equal(await generationOf(join(dir, 'keys', 'key.pem'), 'key'), 1);
    assert.deepEqual([...(await leftovers(dir)), ...(await leftovers(join(dir, 'keys')))], []);
  });

  test('temps from a crash before the commit point are swept and the old files stay', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'cert.pem'), gens[0].cert);
    await writeFile(join(dir, '.cert.pem.certfleet-tmp-0123abcd'), gens[1].cert.slice(0, 100));
    await writeFile(join(dir, 'unrelated.tmp'), 'keep me');
    assert.deepEqual(await recoverPendingWrites(dir), { replayed: 0, removedTemps: 1 });
    assert.equal(await generationOf(join(dir, 'cert.pem'), 'cert'), 0);
    assert.deepEqual((await readdir(dir)).sort(), ['cert.pem', 'unrelated.tmp']);
  });

  test('a tampered journal cannot rename arbitrary files', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'victim'), 'keep');
    await writeFile(join(dir, 'other'), 'x');
    const journal = join(dir, '.certfleet-journal-00ff.json');
    await writeFile(
      journal,
      JSON.stringify({ version: 1, renames: [{ temp: join(dir, 'other'), target: join(dir, 'victim') }] }),
    );
    await assert.rejects(recoverPendingWrites(dir), /write journal .* is unreadable/);
    assert.equal(await readFile(join(dir, 'victim'), 'utf8'), 'keep');
  });
});
