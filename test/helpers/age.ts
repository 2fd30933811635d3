import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** A fresh age identity file made by the standard `age-keygen`, and its recipient (public key). */
export async function ageIdentity(
  dir: string,
  name = 'id.txt',
): Promise<{ file: string; recipient: string }> {
  const file = join(dir, name);
  await exec('age-keygen', ['-o', file]);
  return { file, recipient: (await exec('age-keygen', ['-y', file])).stdout.trim() };
}
