/**
 * Deploys without a server: every output format with owner and mode, validation refusals that write nothing,
 * change windows with a manual clock (wait, re-check, open → reload; override), and command timeouts.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deployLocally as deploy } from '../../src/agent/local-target.ts';
import { ManualClock } from '../../src/core/clock.ts';
import type { OutputSpec } from '../../src/core/types.ts';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { makeTestPki } from '../helpers/test-pki.ts';
import { tempDir } from '../helpers/tmp.ts';
import { NAMES, fullchainOf, recorder, requestFor, subscriptionOf } from './helpers.ts';

const run = promisify(execFile);
const NOBODY = 65534; // Debian: user nobody, group nogroup
const DAY = 86_400_000;

describe('outputs', () => {
  test('every format is written with its owner and mode, and opens with openssl / keytool', async (t) => {
    const dir = await tempDir(t);
    const state = await tempDir(t);
    const pki = await makeTestPki('rsa-2048', { dnsNames: NAMES });
    const out = (name: string, format: string, extra: Partial<OutputSpec> = {}): OutputSpec => ({
      path: join(dir, name),
      format,
      ...extra,
    });
    const outputs = [
      out('cert.pem', 'cert'),
      out('chain.pem', 'chain'),
      out('fullchain.pem', 'fullchain', { owner: 'nobody', group: 'nogroup', mode: '0640' }),
      out('key.pem', 'key', { group: 'nogroup', mode: '0640' }),
      out('key-rsa.pem', 'key-rsa'),
      out('cert.der', 'der'),
      out('store.p12', 'pkcs12', { passwordRef: 'env:P12_PASS' }),
      out('legacy.p12', 'pkcs12', { passwordRef: 'env:P12_PASS', legacy: true }),
      out('store.jks', 'jks', { passwordRef: 'env:P12_PASS', owner: 'nobody' }),
      out('combined.pem', 'combined'),
    ];
    const rec = recorder();
    const res = await deploy(requestFor(pki.bundle, subscriptionOf({ outputs })), rec.report, {
      stateDir: state,
      env: { ...process.env, P12_PASS: 'pw-s3cret' },
    });
    assert.deepEqual(res, { state: 'installed' }); // no reload, no verify configured
    assert.deepEqual(rec.states(), ['installed']);
    assert.doesNotMatch(JSON.stringify(rec.reports), /pw-s3cret|PRIVATE KEY/);

    const want: Record<string, [mode: number, uid: number, gid: number]> = {
      'cert.pem': [0o644, 0, 0],
      'chain.pem': [0o644, 0, 0],
      'fullchain.pem': [0o640, NOBODY, NOBODY],
      'key.pem': [0o640, 0, NOBODY],
      'key-rsa.pem': [0o600, 0, 0],
      'cert.der': [0o644, 0, 0],
      'store.p12': [0o600, 0, 0],
      'legacy.p12': [0o600, 0, 0],
      'store.jks': [0o600, NOBODY, 0],
      'combined.pem': [0o600, 0, 0],
    };
    for (const [name, [mode, uid, gid]] of Object.entries(want)) {
      const st = await stat(join(dir, name));
      assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [mode, uid, gid], name);
    }
    const fp = fingerprintOf(pki.bundle.certPem).toUpperCase();
    const { stdout: x509 } = await run('openssl', [
      'x509',
      '-in',
      join(dir, 'cert.der'),
      '-inform',
      'DER',
      '-noout',
      '-fingerprint',
      '-sha256',
    ]);
    assert.equal(x509.trim().split('=')[1].replace(/:/g, ''), fp);
    assert.match(await readFile(join(dir, 'key-rsa.pem'), 'utf8'), /BEGIN RSA PRIVATE KEY/);
    for (const p12 of ['store.p12', 'legacy.p12']) {
      const { stdout } = await run('openssl', [
        'pkcs12',
        '-in',
        join(dir, p12),
        '-passin',
        'pass:pw-s3cret',
        '-nokeys',
        '-clcerts',
        ...(p12 === 'legacy.p12' ? ['-legacy'] : []),
      ]);
      assert.match(stdout, /BEGIN CERTIFICATE/, p12);
    }
    const { stdout: jks } = await run('keytool', [
      '-list',
      '-keystore',
      join(dir, 'store.jks'),
      '-storepass',
      'pw-s3cret',
    ]);
    assert.match(jks, /PrivateKeyEntry/);
  });

  test('a password reference that cannot be resolved fails before anything is written', async (t) => {
    const dir = await tempDir(t);
    const pki = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    const rec = recorder();
    const res = await deploy(
      requestFor(
        pki.bundle,
        subscriptionOf({
          outputs: [
            { path: join(dir, 'cert.pem'), format: 'cert' },
            { path: join(dir, 'store.p12'), format: 'pkcs12', passwordRef: 'env:NOT_SET_ANYWHERE' },
          ],
        }),
      ),
      rec.report,
      { stateDir: await tempDir(t), env: {} },
    );
    assert.equal(res.state, 'failed');
    assert.equal(res.reason, 'render');
    assert.match(String(res.detail?.message), /NOT_SET_ANYWHERE/);
    assert.deepEqual(await readdir(dir), []);
  });
});

describe('validation refuses a bad bundle and writes nothing', async () => {
  const good = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
  const other = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
  const expired = await makeTestPki('ecdsa-p256', {
    dnsNames: NAMES,
    notBefore: new Date(Date.now() - 60 * DAY),
    notAfter: new Date(Date.now() - DAY),
  });
  const cases = [
    { name: 'expired', bundle: expired.bundle, sans: NAMES, check: 'expired' },
    {
      name: 'mismatched key',
      bundle: { ...good.bundle, keyPem: other.bundle.keyPem },
      sans: NAMES,
      check: 'key_mismatch',
    },
    { name: 'SANs not covered', bundle: good.bundle, sans: [...NAMES, 'api.deploy.test'], check: 'sans' },
    {
      name: 'broken chain',
      bundle: { ...good.bundle, chainPems: other.bundle.chainPems },
      sans: NAMES,
      check: 'chain',
    },
  ];
  for (const c of cases) {
    test(c.name, async (t) => {
      const dir = await tempDir(t);
      const marker = join(dir, 'ran');
      await writeFile(join(dir, 'cert.pem'), 'old\n');
      const rec = recorder();
      const res = await deploy(
        requestFor(
          c.bundle,
          subscriptionOf({
            outputs: [
              { path: join(dir, 'cert.pem'), format: 'fullchain' },
              { path: join(dir, 'key.pem'), format: 'key' },
            ],
            configTest: `touch ${marker}`,
            reload: `touch ${marker}`,
          }),
          { sans: c.sans },
        ),
        rec.report,
        { stateDir: await tempDir(t) },
      );
      assert.equal(res.state, 'failed');
      assert.deepEqual(rec.states(), ['failed']);
      assert.equal(rec.reports[0].reason, 'validation');
      assert.equal(rec.reports[0].detail?.check, c.check);
      assert.ok(String(rec.reports[0].detail?.message).length > 10);
      assert.deepEqual(await readdir(dir), ['cert.pem'], 'no file written, no command run');
      assert.equal(await readFile(join(dir, 'cert.pem'), 'utf8'), 'old\n');
    });
  }
});

describe('change window ("0 2 * * 1-5" Europe/Berlin, 120 minutes)', () => {
  const window = { cron: '0 2 * * 1-5', durationMinutes: 120, timezone: 'Europe/Berlin' };

  async function setup(t: TestContext) {
    const dir = await tempDir(t);
    const pki = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    const reloads = join(dir, 'reloads.log');
    const tests = join(dir, 'tests.log');
    const sub = subscriptionOf({
      outputs: [
        { path: join(dir, 'fullchain.pem'), format: 'fullchain' },
        { path: join(dir, 'key.pem'), format: 'key' },
      ],
      configTest: `echo t >> ${tests}`,
      reload: `echo "$CERTFLEET_VERSION_ID" >> ${reloads}`,
      window,
    });
    const count = async (p: string) =>
      (await readFile(p, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
    return { dir, pki, sub, reloads, tests, count, state: await tempDir(t) };
  }

  test('outside the window: staged and tested, reload waits; in the window the re-invocation reloads', async (t) => {
    const { dir, pki, sub, reloads, tests, count, state } = await setup(t);
    // The test PKI is valid from yesterday for 30 days (real time), so the manual clock starts near now:
    // a Monday–Thursday at 10:00 UTC, when that day's Berlin window (02:00–04:00 local) is over.
    const clock = new ManualClock(nextWeekdayAt(new Date(), 10));
    const req = requestFor(pki.bundle, sub);
    const rec = recorder();
    const ref = { stateDir: state, clock, verifyTimeoutMs: 500 };

    const first = await deploy(req, rec.report, ref);
    assert.equal(first.state, 'waiting_window');
    const nextWindowAt = new Date(first.nextWindowAt!);
    // The next day, 02:00 in Berlin: 01:00 UTC in winter, 00:00 UTC in summer.
    const day = clock.now().getTime() - 10 * 3_600_000 + 86_400_000;
    assert.ok([day, day + 3_600_000].includes(nextWindowAt.getTime()), first.nextWindowAt);
    assert.deepEqual(rec.states(), ['installed', 'waiting_window']);
    assert.equal(rec.reports[1].detail?.nextWindowAt, first.nextWindowAt);
    assert.equal(await count(tests), 1, 'config test ran before waiting');
    assert.equal(await count(reloads), 0);
    const inode = (await stat(join(dir, 'key.pem'))).ino;

    // Re-invoked early (e.g. after an agent restart): still waiting, not reported twice, files not rewritten.
    clock.advance(60_000);
    const early = await deploy(req, rec.report, ref);
    assert.deepEqual(early, first);
    assert.deepEqual(rec.states(), ['installed', 'waiting_window']);
    assert.equal((await stat(join(dir, 'key.pem'))).ino, inode);

    // At the window's start: config test again, then the reload.
    clock.set(nextWindowAt);
    const inWindow = await deploy(req, rec.report, ref);
    assert.deepEqual(inWindow, { state: 'reloaded' });
    assert.deepEqual(rec.states(), ['installed', 'waiting_window', 'reloaded']);
    assert.equal(rec.reports[2].at, nextWindowAt.toISOString());
    assert.equal(await readFile(reloads, 'utf8'), `${req.versionId}\n`);
    assert.equal(await count(tests), 2);
    assert.equal((await stat(join(dir, 'key.pem'))).ino, inode, 'the staged files were used as they were');
  });

  test('overrideWindow reloads now and says so in the report', async (t) => {
    const { pki, sub, reloads, count, state } = await setup(t);
    const clock = new ManualClock(nextWeekdayAt(new Date(), 10));
    const rec = recorder();
    const res = await deploy(requestFor(pki.bundle, sub, { overrideWindow: true }), rec.report, {
      stateDir: state,
      clock,
    });
    assert.deepEqual(res, { state: 'reloaded' });
    assert.deepEqual(rec.states(), ['installed', 'reloaded']);
    assert.equal(rec.reports[1].detail?.window_overridden, true);
    assert.equal(await count(reloads), 1);
  });

  test('a config test that times out is killed and rolls back before any wait', async (t) => {
    const { dir, pki, sub, state } = await setup(t);
    await writeFile(join(dir, 'key.pem'), 'old key\n', { mode: 0o600 });
    const rec = recorder();
    const marker = join(dir, 'config-test-finished'); // would exist if the test had been waited for, not killed
    const res = await deploy(
      requestFor(pki.bundle, { ...sub, configTest: `sleep 30; touch ${marker}` }),
      rec.report,
      {
        stateDir: state,
        clock: new ManualClock(nextWeekdayAt(new Date(), 10)),
        commandTimeoutMs: 300,
      },
    );
    await assert.rejects(stat(marker), { code: 'ENOENT' }, 'killed, not waited for');
    assert.equal(res.state, 'rolled_back');
    assert.equal(res.detail?.step, 'config_test');
    assert.equal(res.detail?.timedOut, true);
    assert.match(String(res.detail?.message), /timed out/);
    assert.equal(await readFile(join(dir, 'key.pem'), 'utf8'), 'old key\n');
    await assert.rejects(
      stat(join(dir, 'fullchain.pem')),
      { code: 'ENOENT' },
      'a file that was absent is removed again',
    );
  });
});

describe('rollback that fails', () => {
  test('a reload that keeps failing: files restored, then failed with both errors', async (t) => {
    const dir = await tempDir(t);
    const pki = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    await writeFile(join(dir, 'key.pem'), 'old key\n', { mode: 0o600 });
    await writeFile(join(dir, 'fullchain.pem'), 'old chain\n');
    const rec = recorder();
    const res = await deploy(
      requestFor(
        pki.bundle,
        subscriptionOf({
          outputs: [
            { path: join(dir, 'fullchain.pem'), format: 'fullchain' },
            { path: join(dir, 'key.pem'), format: 'key' },
          ],
          reload: 'echo "unit is masked" >&2; exit 4',
        }),
      ),
      rec.report,
      { stateDir: await tempDir(t) },
    );
    assert.equal(res.state, 'failed');
    assert.deepEqual(rec.states(), ['installed', 'failed']);
    assert.equal(res.reason, 'rollback_failed');
    assert.equal(res.detail?.step, 'reload');
    assert.equal(res.detail?.exitCode, 4);
    assert.match(String(res.detail?.stderrTail), /unit is masked/);
    assert.match(String(res.detail?.rollbackError), /reload after restoring .*exited with code 4/);
    assert.equal(await readFile(join(dir, 'key.pem'), 'utf8'), 'old key\n');
    assert.equal(await readFile(join(dir, 'fullchain.pem'), 'utf8'), 'old chain\n');
  });
});

describe('first install: nothing to roll back to', () => {
  const firstOutputs = (dir: string): OutputSpec[] => [
    { path: join(dir, 'fullchain.pem'), format: 'fullchain' },
    { path: join(dir, 'key.pem'), format: 'key' },
  ];

  test('a failing config test ends failed with its own output, and the new files are removed again', async (t) => {
    const dir = await tempDir(t);
    const pki = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    const rec = recorder();
    const res = await deploy(
      requestFor(
        pki.bundle,
        subscriptionOf({
          outputs: firstOutputs(dir),
          configTest: 'echo "nginx: [emerg] unknown directive ssl_foo" >&2; exit 1',
        }),
      ),
      rec.report,
      { stateDir: await tempDir(t) },
    );
    assert.equal(res.state, 'failed');
    assert.equal(res.reason, 'config_test');
    assert.deepEqual(rec.states(), ['installed', 'failed']);
    assert.equal(rec.reports[1].reason, 'config_test');
    assert.equal(res.detail?.exitCode, 1);
    assert.match(String(res.detail?.stderrTail), /unknown directive ssl_foo/);
    assert.equal(res.detail?.firstInstall, true);
    assert.equal(res.detail?.filesRemoved, true);
    assert.equal(res.detail?.rollbackError, undefined);
    assert.deepEqual(await readdir(dir), [], 'as before the deploy');
  });

  test('a failing reload ends failed with its own output; no second reload, and the files stay for the server', async (t) => {
    const dir = await tempDir(t);
    const runs = join(await tempDir(t), 'reloads');
    const pki = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    const rec = recorder();
    const res = await deploy(
      requestFor(
        pki.bundle,
        subscriptionOf({
          outputs: firstOutputs(dir),
          reload: `echo run >> ${runs}; echo "unit is masked" >&2; exit 4`,
        }),
      ),
      rec.report,
      { stateDir: await tempDir(t) },
    );
    assert.equal(res.state, 'failed');
    assert.equal(res.reason, 'reload');
    assert.deepEqual(rec.states(), ['installed', 'failed']);
    assert.equal(res.detail?.exitCode, 4);
    assert.match(String(res.detail?.stderrTail), /unit is masked/);
    assert.equal(res.detail?.filesRemoved, false);
    assert.equal(await readFile(runs, 'utf8'), 'run\n', 'reloaded once, not again after a restore');
    assert.equal(await readFile(join(dir, 'fullchain.pem'), 'utf8'), fullchainOf(pki.bundle));
  });

  test('a failing verify ends failed with the verify message, not rollback_failed', async (t) => {
    const dir = await tempDir(t);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r)); // nothing listens there now
    const pki = await makeTestPki('ecdsa-p256', { dnsNames: NAMES });
    const res = await deploy(
      requestFor(
        pki.bundle,
        subscriptionOf({ outputs: firstOutputs(dir), reload: 'true', verify: { host: '127.0.0.1', port } }),
      ),
      recorder().report,
      { stateDir: await tempDir(t), verifyTimeoutMs: 300 },
    );
    assert.equal(res.state, 'failed');
    assert.equal(res.reason, 'verify');
    assert.equal(res.detail?.step, 'verify');
    assert.ok(String(res.detail?.message).length > 0);
    assert.equal(res.detail?.firstInstall, true);
    assert.equal(res.detail?.rollbackError, undefined);
  });
});

/** The next Monday–Thursday at `hourUtc`:00 UTC on or after `from` (a closed-window time with a window ahead). */
function nextWeekdayAt(from: Date, hourUtc: number): Date {
  const d = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate(), hourUtc));
  while (d < from || ![1, 2, 3, 4].includes(d.getUTCDay())) d.setUTCDate(d.getUTCDate() + 1);
  return d;
}
