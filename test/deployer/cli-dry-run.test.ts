import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { makeTestPki } from '../helpers/test-pki.ts';
import { CLI } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { fullchainOf } from './helpers.ts';

/** The real `certfleet` binary, as a user runs it. */
function cli(
  args: string[],
  global: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...global, 'agent', 'deploy', ...args],
      { timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

test('certfleet agent deploy --dry-run from files: renders, runs the config test there, touches nothing', async (t) => {
  const dir = await tempDir(t);
  const live = join(dir, 'live');
  const work = join(dir, 'work');
  await Promise.all([mkdir(live), mkdir(work)]);
  const pki = await makeTestPki('ecdsa-p256', { dnsNames: ['dry.deploy.test'] });
  await writeFile(join(work, 'fullchain.pem'), fullchainOf(pki.bundle));
  await writeFile(join(work, 'key.pem'), pki.bundle.keyPem);
  await writeFile(join(live, 'fullchain.pem'), 'old cert\n');
  const spec = (configTest: string) =>
    JSON.stringify({
      outputs: [
        { path: join(live, 'fullchain.pem'), format: 'fullchain' },
        { path: join(live, 'key.pem'), format: 'key', mode: '0640' },
      ],
      configTest,
      reload: 'echo reload-must-not-run >&2; exit 9',
    });
  await writeFile(
    join(work, 'ok.json'),
    spec(
      'test "$CERTFLEET_DRY_RUN" = 1 && openssl x509 -in "$CERTFLEET_OUTPUT_DIR/fullchain.pem" -noout -fingerprint -sha256 >&2',
    ),
  );
  await writeFile(join(work, 'bad.json'), spec('echo "emerg: cannot load certificate" >&2; exit 1'));
  const base = [
    '--dry-run',
    '--state-dir',
    join(dir, 'state'),
    '--cert',
    join(work, 'fullchain.pem'),
    '--key',
    join(work, 'key.pem'),
  ];

  const ok = await cli([...base, '--spec', join(work, 'ok.json')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /would deploy/);
  assert.match(ok.stdout, new RegExp(`write ${join(live, 'key.pem')} \\(key, 0640`));
  assert.match(ok.stdout, /config test passed/);
  assert.match(ok.stdout, /reload now: echo reload-must-not-run/);

  const json = await cli([...base, '--spec', join(work, 'ok.json')], ['--json']);
  assert.equal(json.code, 0, json.stderr);
  const [result] = JSON.parse(json.stdout);
  assert.equal(result.outcome.dryRun.ok, true);
  // The config test read the rendered fullchain from $CERTFLEET_OUTPUT_DIR: openssl printed its fingerprint.
  const colons = fingerprintOf(pki.bundle.certPem).toUpperCase().match(/../g)!.join(':');
  assert.ok(
    result.outcome.dryRun.configTest.stderrTail.includes(colons),
    result.outcome.dryRun.configTest.stderrTail,
  );
  assert.deepEqual(
    result.outcome.dryRun.outputs.map((o: { wouldWrite: boolean }) => o.wouldWrite),
    [true, true],
  );

  const bad = await cli([...base, '--spec', join(work, 'bad.json')]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, '');
  assert.match(bad.stdout, /would FAIL/);
  assert.match(bad.stdout, /config test FAILED \(exit 1\)/);
  assert.match(bad.stdout, /cannot load certificate/);
  const badJson = await cli([...base, '--spec', join(work, 'bad.json')], ['--json']);
  assert.equal(badJson.code, 1);
  assert.equal(JSON.parse(badJson.stdout)[0].outcome.dryRun.ok, false);

  const noSpec = await cli(['--dry-run', '--cert', join(work, 'fullchain.pem')]);
  assert.equal(noSpec.code, 1);
  assert.match(noSpec.stderr, /needs --cert, --key and --spec/);
  assert.doesNotMatch(noSpec.stderr, /\n\s+at /); // no stack trace

  assert.deepEqual(await readdir(live), ['fullchain.pem']);
  assert.equal(await readFile(join(live, 'fullchain.pem'), 'utf8'), 'old cert\n');
  assert.ok((await stat(join(live, 'fullchain.pem'))).isFile());
});
