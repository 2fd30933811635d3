import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Asserts that `openssl verify` accepts leaf + intermediates up to the given root. */
export async function assertOpensslVerifies(
  leafPem: string,
  chainPems: string[],
  rootPem: string,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-verify-'));
  try {
    await writeFile(join(dir, 'root.pem'), rootPem);
    await writeFile(join(dir, 'chain.pem'), chainPems.join(''));
    await writeFile(join(dir, 'leaf.pem'), leafPem);
    const { stdout } = await run('openssl', [
      'verify',
      '-CAfile',
      join(dir, 'root.pem'),
      '-untrusted',
      join(dir, 'chain.pem'),
      join(dir, 'leaf.pem'),
    ]);
    assert.match(stdout, /leaf\.pem: OK/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
