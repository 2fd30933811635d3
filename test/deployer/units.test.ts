import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkWindow, windowState } from '../../src/deploy/change-window.ts';
import { runCommand } from '../../src/deploy/run-command.ts';
import { hookEnv } from '../../src/deploy/hook-env.ts';
import { defaultMode, parseMode } from '../../src/deploy/render-outputs.ts';
import { nameCovered, validateBundle } from '../../src/deploy/validate-bundle.ts';
import { CertfleetError } from '../../src/core/errors.ts';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { makeTestPki } from '../helpers/test-pki.ts';
import { tempDir } from '../helpers/tmp.ts';

const DAY = 86_400_000;

describe('validateBundle', async () => {
  const pki = await makeTestPki('ecdsa-p256', { dnsNames: ['www.example.test', '*.api.example.test'] });
  const other = await makeTestPki('ecdsa-p256', { dnsNames: ['www.example.test'] });
  const now = new Date();
  const ok = { now, sans: ['www.example.test', '*.api.example.test'] };

  test('a good bundle passes, with or without the announced fingerprint and a configured root', () => {
    assert.equal(validateBundle(pki.bundle, ok), undefined);
    assert.equal(
      validateBundle(pki.bundle, { ...ok, fingerprint: fingerprintOf(pki.bundle.certPem) }),
      undefined,
    );
    assert.equal(validateBundle(pki.bundle, { ...ok, trustedRootPems: [pki.rootPem] }), undefined);
    const withRoot = { ...pki.bundle, chainPems: [...pki.bundle.chainPems, pki.rootPem] };
    assert.equal(validateBundle(withRoot, ok), undefined);
  });

  test('an expired certificate, or one not yet valid, is refused', () => {
    assert.equal(
      validateBundle(pki.bundle, { ...ok, now: new Date(now.getTime() + 31 * DAY) })?.check,
      'expired',
    );
    assert.equal(
      validateBundle(pki.bundle, { ...ok, now: new Date(now.getTime() - 2 * DAY) })?.check,
      'not_yet_valid',
    );
  });

  test('a key that does not belong to the certificate is refused, without showing the key', () => {
    const p = validateBundle({ ...pki.bundle, keyPem: other.bundle.keyPem }, ok);
    assert.equal(p?.check, 'key_mismatch');
    assert.doesNotMatch(p!.message, /PRIVATE KEY/);
  });

  test('a chain that does not link up is refused', () => {
    assert.equal(validateBundle({ ...pki.bundle, chainPems: other.bundle.chainPems }, ok)?.check, 'chain');
    assert.equal(validateBundle(pki.bundle, { ...ok, trustedRootPems: [other.rootPem] })?.check, 'chain');
  });

  test('names the certificate does not cover are refused and listed', () => {
    const p = validateBundle(pki.bundle, { ...ok, sans: ['www.example.test', 'shop.example.test'] });
    assert.equal(p?.check, 'sans');
    assert.match(p!.message, /shop\.example\.test/);
    assert.equal(validateBundle(pki.bundle, { ...ok, sans: ['v1.api.example.test'] }), undefined);
  });

  test('a bundle whose leaf is not the announced version is refused', () => {
    assert.equal(
      validateBundle(pki.bundle, { ...ok, fingerprint: fingerprintOf(other.bundle.certPem) })?.check,
      'fingerprint',
    );
  });

  test('garbage is refused as unparseable', () => {
    assert.equal(validateBundle({ ...pki.bundle, certPem: 'nope' }, ok)?.check, 'parse');
  });
});

describe('nameCovered (wildcard rules)', () => {
  const rows: Array<[string, string[], boolean]> = [
    ['a.example.com', ['*.example.com'], true],
    ['A.Example.COM.', ['*.example.com'], true],
    ['example.com', ['*.example.com'], false],
    ['a.b.example.com', ['*.example.com'], false],
    ['*.example.com', ['*.example.com'], true],
    ['*.example.com', ['a.example.com'], false],
    ['192.0.2.1', ['192.0.2.1'], true],
    ['192.0.2.1', ['*.0.2.1'], false],
  ];
  for (const [name, certNames, want] of rows) {
    test(`${name} ${want ? 'is' : 'is not'} covered by ${certNames.join(', ')}`, () => {
      assert.equal(nameCovered(name, certNames), want);
    });
  }
});

describe('windowState ("0 2 * * 1-5" Europe/Berlin, 120 minutes)', () => {
  const w = { cron: '0 2 * * 1-5', durationMinutes: 120, timezone: 'Europe/Berlin' };
  // November: Berlin is UTC+1, so windows run 01:00–03:00 UTC on weekdays.
  test('open from the start (inclusive) until start + duration (exclusive)', () => {
    assert.deepEqual(windowState(w, new Date('2026-11-24T01:00:00Z')), {
      open: true,
      closesAt: new Date('2026-11-24T03:00:00Z'),
    });
    assert.equal(windowState(w, new Date('2026-11-24T02:59:59.999Z')).open, true);
    assert.deepEqual(windowState(w, new Date('2026-11-24T03:00:00Z')), {
      open: false,
      opensAt: new Date('2026-11-25T01:00:00Z'),
    });
    assert.deepEqual(windowState(w, new Date('2026-11-24T00:59:59Z')), {
      open: false,
      opensAt: new Date('2026-11-24T01:00:00Z'),
    });
  });

  test('a Friday afternoon waits for Monday', () => {
    assert.deepEqual(windowState(w, new Date('2026-11-27T15:00:00Z')), {
      open: false,
      opensAt: new Date('2026-11-30T01:00:00Z'),
    });
  });

  test('follows daylight saving time: in summer the window starts at 00:00 UTC', () => {
    assert.deepEqual(windowState(w, new Date('2026-03-27T12:00:00Z')), {
      open: false,
      opensAt: new Date('2026-03-30T00:00:00Z'),
    });
    assert.equal(windowState(w, new Date('2026-03-30T01:59:00Z')).open, true);
    assert.equal(windowState(w, new Date('2026-03-30T02:00:00Z')).open, false);
  });

  test('a window longer than its period is open across the boundary', () => {
    const hourly = { cron: '0 * * * *', durationMinutes: 90, timezone: 'UTC' };
    assert.equal(windowState(hourly, new Date('2026-11-24T10:20:00Z')).open, true);
  });

  test('bad cron, time zone or duration is a CONFIG_INVALID error with a hint', () => {
    for (const bad of [
      { ...w, cron: 'every day' },
      { ...w, timezone: 'Mars/Olympus' },
      { ...w, durationMinutes: 0 },
    ]) {
      assert.throws(
        () => checkWindow(bad),
        (e: unknown) => e instanceof CertfleetError && e.code === 'CONFIG_INVALID' && e.hint.length > 0,
      );
    }
  });
});

describe('output modes', () => {
  test('defaults: secrets 0600, public material 0644; octal strings parsed; junk refused', () => {
    for (const f of ['key', 'key-rsa', 'pkcs12', 'jks', 'combined']) assert.equal(defaultMode(f), 0o600);
    for (const f of ['cert', 'chain', 'fullchain', 'der']) assert.equal(defaultMode(f), 0o644);
    assert.equal(parseMode('0640', 'key'), 0o640);
    assert.equal(parseMode('440', 'key'), 0o440);
    assert.equal(parseMode(undefined, 'cert'), 0o644);
    assert.throws(() => parseMode('rw-r-----', 'cert'), /not an octal file mode/);
    assert.throws(() => parseMode('0999', 'cert'), /not an octal file mode/);
  });
});

describe('runCommand', () => {
  test('reports exit code and the stderr tail (last 2 KB)', async () => {
    const r = await runCommand('head -c 5000 /dev/zero | tr "\\0" a >&2; echo END >&2; exit 7');
    assert.equal(r.exitCode, 7);
    assert.equal(r.ok, false);
    assert.ok(r.stderrTail.length <= 2048);
    assert.match(r.stderrTail, /aEND\n$/);
  });

  test('a timeout kills the whole process group, grandchildren included', async (t) => {
    const dir = await tempDir(t);
    const pidFile = join(dir, 'pid');
    const marker = join(dir, 'finished'); // would exist if the command had been waited for instead of killed
    const r = await runCommand(`sleep 30 & echo $! > ${pidFile}; wait; touch ${marker}`, { timeoutMs: 300 });
    assert.equal(r.timedOut, true);
    assert.equal(r.ok, false);
    await assert.rejects(stat(marker), { code: 'ENOENT' }, 'killed, not waited for');
    assert.match(r.stderrTail, /timed out after 300 ms/);
    const pid = Number(await readFile(pidFile, 'utf8'));
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      try {
        process.kill(pid, 0);
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
        alive = stat !== '' && !/\) Z /.test(stat);
      } catch {
        alive = false;
      }
      if (alive) await sleep(20);
    }
    assert.equal(alive, false, 'the backgrounded sleep was killed');
  });

  test('an aborted signal ends the command', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await runCommand('sleep 30', { signal: ac.signal });
    assert.equal(r.aborted, true);
    assert.equal(r.ok, false);
  });

  test('hook environment carries certbot and certfleet variables', async () => {
    const env = hookEnv(
      {
        certificateName: 'web',
        sans: ['a.example.test', 'b.example.test'],
        fingerprint: 'ab12',
        versionId: 'ver_1',
        subscriptionId: 'sub_1',
        outputPaths: ['/etc/ssl/web/fullchain.pem', '/etc/ssl/web/key.pem'],
      },
      { PATH: process.env.PATH },
    );
    const r = await runCommand(
      'echo "$RENEWED_LINEAGE|$RENEWED_DOMAINS|$CERTFLEET_CERT_NAME|$CERTFLEET_FINGERPRINT|$CERTFLEET_VERSION_ID|$CERTFLEET_SUBSCRIPTION_ID|$CERTFLEET_OUTPUTS"',
      { env },
    );
    assert.equal(
      r.stdoutTail,
      '/etc/ssl/web|a.example.test b.example.test|web|ab12|ver_1|sub_1|/etc/ssl/web/fullchain.pem /etc/ssl/web/key.pem\n',
    );
  });
});
