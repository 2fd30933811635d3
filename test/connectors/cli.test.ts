/**
 * Connector endpoints through the real `certfleet` binary against a hub process: adding an ssh connector
 * endpoint, pinning its host key with `endpoint trust-host-key` (against a real sshd), and bad input answered
 * with a message and a hint, leaving nothing half-made behind.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startHubProcess } from '../helpers/cli.ts';
import { startTestSshd } from '../helpers/sshd.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('certfleet endpoint … --connector (real binary)', () => {
  test('add an ssh connector endpoint, then trust-host-key shows the fingerprint and pins it only as asked', async (t) => {
    const sshd = await startTestSshd(t);
    const hub = await startHubProcess(t);
    const keyFile = join(await tempDir(t), 'id_ed25519');
    await writeFile(keyFile, sshd.privateKeyPem, { mode: 0o600 });
    const ssh = [
      '--host',
      '127.0.0.1',
      '--port',
      String(sshd.port),
      '--user',
      sshd.user,
      '--key-file',
      keyFile,
    ];

    const added = await runCli(['endpoint', 'add', 'lb1', '--connector', 'ssh', ...ssh], hub.env);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /created connector endpoint lb1/);
    assert.match(added.stdout, /host key NOT PINNED/);
    assert.match(added.stdout, /certfleet endpoint trust-host-key lb1/);
    const shown = JSON.parse((await runCli(['--json', 'endpoint', 'list'], hub.env)).stdout) as Array<{
      name: string;
      kind: string;
    }>;
    assert.deepEqual(
      shown.map((e) => [e.name, e.kind]),
      [['lb1', 'connector']],
    );

    // A fingerprint that is not the host's: refused, naming the one seen; nothing pinned.
    const wrong = `SHA256:${'B'.repeat(43)}`;
    const refused = await runCli(['endpoint', 'trust-host-key', 'lb1', '--fingerprint', wrong], hub.env);
    assert.notEqual(refused.code, 0);
    assert.ok(
      refused.stderr.includes(`presents host key ${sshd.hostKeyFingerprint}, not ${wrong}`),
      refused.stderr,
    );
    assert.match(refused.stderr, /hint: /);

    // Without a terminal to confirm on, and without --yes or --fingerprint: shown, not pinned.
    const unconfirmed = await runCli(['endpoint', 'trust-host-key', 'lb1'], hub.env);
    assert.notEqual(unconfirmed.code, 0);
    assert.ok(unconfirmed.stderr.includes(sshd.hostKeyFingerprint), unconfirmed.stderr);
    assert.match(
      unconfirmed.stderr,
      new RegExp(`hint: .*--fingerprint ${sshd.hostKeyFingerprint.replace(/[+/]/g, '\\$&')}`),
    );

    const pinned = await runCli(
      ['endpoint', 'trust-host-key', 'lb1', '--fingerprint', sshd.hostKeyFingerprint],
      hub.env,
    );
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.match(
      pinned.stdout,
      new RegExp(`pinned host key ${sshd.hostKeyFingerprint.replace(/[+/]/g, '\\$&')}`),
    );
    const view = JSON.parse(
      (await runCli(['--json', 'endpoint', 'connector', 'lb1', '--connector', 'ssh', ...ssh], hub.env))
        .stdout,
    );
    assert.equal(
      view.hostKeyFingerprint,
      sshd.hostKeyFingerprint,
      'reconfiguring the same host keeps the pin',
    );
    assert.deepEqual(view.secrets, ['privateKey']);
    assert.equal(JSON.stringify(view).includes('PRIVATE KEY'), false, 'the key is never shown');
  });

  test('bad connector input: a clear error with a hint, and no endpoint is created', async (t) => {
    const hub = await startHubProcess(t);
    const dir = await tempDir(t);
    const pub = join(dir, 'id_ed25519.pub');
    await writeFile(pub, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7 someone@host\n');
    const cases: Array<[string[], RegExp]> = [
      [['--connector', 'ssh', '--host', 'lb.example.net'], /--connector ssh needs --user, --key-file/],
      [['--connector', 'ftp'], /unknown connector kind "ftp"/],
      [['--connector', 'ssh', '--host', 'h', '--user', 'u', '--key-file', pub], /holds no private key/],
      [
        ['--connector', 'ssh', '--host', 'h', '--user', 'u', '--key-file', join(dir, 'missing')],
        /cannot read the key file/,
      ],
      [['--host', 'h'], /--host needs --connector ssh/],
      [['--connector', 'ssh', '--port', '99999'], /"99999" is not a port/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['endpoint', 'add', 'lb2', ...args], hub.env);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, message, args.join(' '));
      if (!/not a port/.test(String(message))) assert.match(r.stderr, /hint: /, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    const list = JSON.parse((await runCli(['--json', 'endpoint', 'list'], hub.env)).stdout);
    assert.deepEqual(list, [], 'nothing was created');
  });
});
