/**
 * The real binary refuses bad input to `certfleet hub proxy-cert` and `certfleet hub --trusted-proxy` with a clear
 * error and a non-zero exit, and leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, startHubProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const noStack = (stderr: string) => assert.doesNotMatch(stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');

test('hub proxy-cert: bad names, an unwritable --out and a missing data directory fail cleanly', async (t) => {
  const dir = await tempDir(t, 'certfleet-proxy-cert-');
  const hub = await startHubProcess(t);
  const base = ['hub', 'proxy-cert', '--data-dir', hub.dataDir];

  const badName = await runCli([...base, '--out', join(dir, 'a.pem'), '--name', 'not a name!']);
  assert.equal(badName.code, 1, badName.stderr);
  assert.match(badName.stderr, /--name "not a name!" is not a valid DNS name or IP address/);
  noStack(badName.stderr);

  const missingDir = join(dir, 'no-such-dir');
  const unwritable = await runCli([...base, '--out', join(missingDir, 'b.pem'), '--name', 'proxy.example']);
  assert.equal(unwritable.code, 1, unwritable.stderr);
  assert.match(unwritable.stderr, /cannot write .*no-such-dir\/b\.pem/);
  assert.match(unwritable.stderr, /directory/i, 'the fix is named');
  noStack(unwritable.stderr);

  const noData = await runCli([
    'hub',
    'proxy-cert',
    '--data-dir',
    join(dir, 'nothing-here'),
    '--out',
    join(dir, 'c.pem'),
    '--name',
    'proxy.example',
  ]);
  assert.notEqual(noData.code, 0, noData.stderr);
  noStack(noData.stderr);

  assert.deepEqual(await readdir(dir), [], 'no certificate, key or temporary file written');
});

test('hub --trusted-proxy refuses what is not an address or range, before it starts', async (t) => {
  const dir = await tempDir(t, 'certfleet-trusted-proxy-');
  const r = await runCli([
    'hub',
    '--data-dir',
    dir,
    '--listen',
    '127.0.0.1:0',
    '--no-tls',
    '--trusted-proxy',
    '10.0.0.0/40',
  ]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--trusted-proxy: "10\.0\.0\.0\/40" is not an IP address or CIDR range/);
  noStack(r.stderr);
});
