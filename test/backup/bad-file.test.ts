/**
 * Damaged backup files, through the real binary: truncated (in the payload, in the header) and one flipped byte (in
 * the payload, in the header). age authenticates every chunk, so each is refused as damaged with a hint, before
 * anything is written.
 */
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { backupFixture } from '../helpers/backup.ts';

test('a truncated file or a flipped byte is refused as damaged; nothing is restored', async (t) => {
  const { key, good, write, refused } = await backupFixture(t);
  const bytes = await readFile(good);
  const id = ['--identity', key.file];
  await refused(
    await write('cut.age', bytes.subarray(0, Math.floor(bytes.length / 2))),
    id,
    /backup cut\.age is damaged or not an age file/,
    /hint: the file was truncated or modified after it was written: use another copy/,
  );
  await refused(await write('header.age', bytes.subarray(0, 60)), id, /damaged or not an age file/, /hint: /);
  const flip = (at: number) => {
    const b = Buffer.from(bytes);
    b[at] ^= 0x01;
    return b;
  };
  await refused(
    await write('flip-payload.age', flip(Math.floor(bytes.length / 2))),
    id,
    /backup flip-payload\.age is damaged or not an age file/,
    /hint: the file was truncated or modified/,
  );
  // In the recipient stanza the flip changes the key share: no identity matches any more.
  await refused(
    await write('flip-header.age', flip(30)),
    id,
    /is damaged or not an age file|does not open/,
    /hint: /,
  );
});
