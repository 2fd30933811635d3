import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolvePasswordRef } from '../../src/formats/index.ts';
import { CertfleetError } from '../../src/core/errors.ts';
import { suiteCleanup } from '../helpers/cleanup.ts';

const SECRET = 's3cr3t-value-XYZ';

function rejectsWithout(p: Promise<unknown>, pattern: RegExp) {
  return assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CertfleetError);
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.match(e.message, pattern);
    assert.ok(e.hint.length > 0);
    assert.ok(!JSON.stringify(e.toJSON()).includes(SECRET), 'never the secret');
    return true;
  });
}

describe('resolvePasswordRef', () => {
  let dir: string;
  const atEnd = suiteCleanup();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certfleet-pwref-'));
    atEnd(() => rm(dir, { recursive: true, force: true }));
  });

  test('env:NAME reads the variable from the given environment', async () => {
    assert.equal(await resolvePasswordRef('env:P12_PASS', { P12_PASS: SECRET }), SECRET);
  });

  test('file:/path reads the file and drops exactly one trailing newline', async () => {
    const f = join(dir, 'pass');
    await writeFile(f, `${SECRET}\n`);
    assert.equal(await resolvePasswordRef(`file:${f}`), SECRET);
    await writeFile(f, `${SECRET} \n\n`);
    assert.equal(await resolvePasswordRef(`file:${f}`), `${SECRET} \n`);
    await writeFile(f, `${SECRET}\r\n`);
    assert.equal(await resolvePasswordRef(`file:${f}`), SECRET);
  });

  test('a missing variable names the reference and the variable', async () => {
    await rejectsWithout(
      resolvePasswordRef('env:NOPE_NOT_SET', {}),
      /"env:NOPE_NOT_SET".*NOPE_NOT_SET is not set/,
    );
  });

  test('an unreadable file names the reference and the errno, not the contents', async () => {
    await rejectsWithout(
      resolvePasswordRef(`file:${join(dir, 'missing')}`),
      /cannot read the file \(ENOENT\)/,
    );
    const f = join(dir, 'dir-not-file');
    await rm(f, { force: true, recursive: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(f));
    await rejectsWithout(resolvePasswordRef(`file:${f}`), /cannot read the file \(EISDIR\)/);
  });

  test('an empty file is an error, not an empty password', async () => {
    const f = join(dir, 'empty');
    await writeFile(f, '\n');
    await chmod(f, 0o600);
    await rejectsWithout(resolvePasswordRef(`file:${f}`), /file is empty/);
  });

  test('bad syntax and relative paths are rejected with the expected form', async () => {
    await rejectsWithout(
      resolvePasswordRef(SECRET),
      /is not of the form env:NAME or file:\/path \(its value is not shown\)/,
    );
    await rejectsWithout(resolvePasswordRef('vault:x'), /not of the form/);
    await rejectsWithout(resolvePasswordRef('file:relative/pass'), /absolute path/);
  });
});
