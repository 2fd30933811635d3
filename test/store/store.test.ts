import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { openHubContext } from '../../src/hub/hub.ts';
import { CertificateService } from '../../src/hub/certificate-service.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { tempDir } from '../helpers/tmp.ts';

import { specFor } from './fixtures/concurrent-writer-spec.ts';

const WRITER = join(import.meta.dirname, 'fixtures', 'concurrent-writer.ts');

/** Runs the fixture in another process (better-sqlite3 is synchronous: two writers must be two processes). */
function otherProcess(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', WRITER, ...args],
      { timeout: 60_000 },
      (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)),
    ),
  );
}

describe('store revision and meta', () => {
  test('two processes bumping the revision at once never lose a bump', async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'hub.db');
    const store = await openSqliteStore(path, new ManualClock(Date.now()));
    onCleanup(t, () => store.close());
    const cert = await store.createCertificate(
      {
        name: 'web',
        sans: ['web.example.test'],
        keyType: 'ecdsa-p256',
        issuer: 'internal',
        lifetimeDays: 30,
      },
      'test',
    );
    await store.createEndpoint({ name: 'web1', kind: 'agent', probeTargets: [], labels: {} }, 'test');
    const before = await store.revision();
    const child = otherProcess(['bump', path, '300']);
    const endpoint = (await store.getEndpoint('web1'))!;
    for (let i = 0; i < 300; i++)
      await store.upsertSubscription(endpoint.id, cert.id, specFor('parent', i), 'test');
    assert.deepEqual(JSON.parse(await child), { done: 300 });
    assert.equal(await store.revision(), before + 600);
  });

  test("initMeta stores one writer's whole set: concurrent processes get the same values", async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'hub.db');
    const store = await openSqliteStore(path, new ManualClock(Date.now()));
    onCleanup(t, () => store.close());
    const set = (who: string) => ({
      'ca.key': `${who}-key`,
      'ca.cert': `${who}-cert`,
      'ca.chain': `${who}-chain`,
    });
    const [fromA, fromB] = await Promise.all([
      otherProcess(['init', path, 'a']),
      otherProcess(['init', path, 'b']),
    ]);
    assert.deepEqual(JSON.parse(fromA), JSON.parse(fromB));
    const winner = JSON.parse(fromA)['ca.key'].split('-')[0];
    assert.ok(winner === 'a' || winner === 'b', winner);
    assert.deepEqual(JSON.parse(fromA), set(winner));
    assert.deepEqual(await store.initMeta(set('c')), set(winner), 'a later call changes nothing');
  });
});

describe('store and secrets at rest', () => {
  test('the database files contain no private key bytes in clear', async (t) => {
    const dir = await tempDir(t);
    const ctx = await openHubContext({ dataDir: dir, env: {} });
    const certs = new CertificateService(ctx);
    const created = await certs.create(
      { name: 'web', sans: ['web.example.test'], keyType: 'rsa-2048', issuer: 'internal', lifetimeDays: 30 },
      'test',
    );
    const version = (await ctx.store.currentVersion(created.id))!;
    const keyPem = await certs.privateKeyOf(created, version);
    await ctx.store.close();

    const der = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
    const b64 = keyPem.split('\n')[1];
    for (const name of await readdir(dir)) {
      if (!name.startsWith('hub.db')) continue;
      const bytes = await readFile(join(dir, name));
      assert.equal(bytes.indexOf(der.subarray(20, 60)), -1, `${name} holds key bytes`);
      assert.equal(bytes.indexOf(Buffer.from(b64)), -1, `${name} holds key PEM`);
      assert.equal(bytes.indexOf(Buffer.from('PRIVATE KEY')), -1, `${name} holds a PEM key header`);
    }
  });

  test('the master key file is created with mode 0600 on first start', async (t) => {
    const dir = await tempDir(t);
    const ctx = await openHubContext({ dataDir: dir, env: {} });
    await ctx.store.close();
    assert.equal((await stat(join(dir, 'master.key'))).mode & 0o777, 0o600);
  });

  test('a wrong master key gives a clear error, not garbage', async (t) => {
    const dir = await tempDir(t);
    const ctx = await openHubContext({ dataDir: dir, env: { CERTFLEET_MASTER_KEY: 'a'.repeat(64) } });
    await ctx.store.close();
    await assert.rejects(
      openHubContext({ dataDir: dir, env: { CERTFLEET_MASTER_KEY: 'b'.repeat(64) } }),
      (e: any) => {
        assert.equal(e.code, 'MASTER_KEY_MISMATCH');
        assert.match(e.message, /master key does not open this data directory/);
        assert.match(e.hint, /CERTFLEET_MASTER_KEY/);
        return true;
      },
    );
    // The right key still works: nothing was lost by the failed attempt.
    const again = await openHubContext({ dataDir: dir, env: { CERTFLEET_MASTER_KEY: 'a'.repeat(64) } });
    await again.store.close();
  });

  test('a too-short master key is refused with a hint', async (t) => {
    const dir = await tempDir(t);
    await assert.rejects(
      openHubContext({ dataDir: dir, env: { CERTFLEET_MASTER_KEY: 'short' } }),
      /too short/,
    );
  });

  test('a failing state change leaves no partial rows or events', async (t) => {
    const dir = await tempDir(t);
    const store = await openSqliteStore(join(dir, 'hub.db'), new ManualClock('2026-01-01T00:00:00Z'));
    onCleanup(t, () => store.close());
    await store.createCertificate(
      { name: 'web', sans: ['a.example'], keyType: 'ecdsa-p256', issuer: 'internal', lifetimeDays: 30 },
      'test',
    );
    const events = (await store.listEvents()).length;
    await assert.rejects(
      store.createCertificate(
        { name: 'web', sans: ['b.example'], keyType: 'ecdsa-p256', issuer: 'internal', lifetimeDays: 30 },
        'test',
      ),
      (e: any) => e.code === 'ALREADY_EXISTS',
    );
    assert.equal((await store.listEvents()).length, events);
    await assert.rejects(
      store.addVersion(
        'no-such-id',
        {
          serial: '1',
          fingerprint: 'f',
          notBefore: '',
          notAfter: '',
          certPem: '',
          chainPem: '',
          sealedKey: '',
          issuer: 'internal',
        },
        'test',
      ),
      { code: 'CERTIFICATE_NOT_FOUND' },
    );
    assert.equal((await store.listEvents()).length, events);
    assert.equal(await store.revision(), 0);
  });

  test('migrations are idempotent across restarts and foreign keys are enforced', async (t) => {
    const dir = await tempDir(t);
    const clock = new ManualClock('2026-01-01T00:00:00Z');
    const first = await openSqliteStore(join(dir, 'hub.db'), clock);
    const cert = await first.createCertificate(
      { name: 'web', sans: ['a.example'], keyType: 'ecdsa-p256', issuer: 'internal', lifetimeDays: 30 },
      'test',
    );
    await first.close();
    const second = await openSqliteStore(join(dir, 'hub.db'), clock);
    onCleanup(t, () => second.close());
    assert.equal((await second.getCertificate('web'))?.id, cert.id);
    await assert.rejects(
      second.upsertSubscription('missing-endpoint', cert.id, { outputs: [] }, 'test'),
      /endpoint or certificate was deleted/,
    );
  });

  test('events record the actor and the injected time', async (t) => {
    const dir = await tempDir(t);
    const store = await openSqliteStore(join(dir, 'hub.db'), new ManualClock('2030-05-05T05:05:05Z'));
    onCleanup(t, () => store.close());
    await store.createEndpoint({ name: 'e1', kind: 'agent', probeTargets: [], labels: {} }, 'admin:alice');
    const [e] = await store.listEvents();
    assert.equal(e.actor, 'admin:alice');
    assert.equal(e.at, '2030-05-05T05:05:05.000Z');
    assert.equal(e.kind, 'endpoint.created');
    assert.equal(e.subject, 'endpoint:e1');
  });

  test('replacing tokens revokes exactly the matching ones and creates the new one, with events, in one step', async (t) => {
    const store = await openSqliteStore(':memory:', new ManualClock('2030-05-05T05:05:05Z'));
    onCleanup(t, () => store.close());
    await store.createToken({ kind: 'admin', name: 'bootstrap', hash: 'h-old' }, 'system');
    await store.createToken({ kind: 'admin', name: 'ci', hash: 'h-ci' }, 'system');
    await store.createToken({ kind: 'read', name: 'monitoring', hash: 'h-read' }, 'system');
    // API token names are unique across roles, so a name says which token acted.
    await assert.rejects(
      store.createToken({ kind: 'read', name: 'bootstrap', hash: 'h-other' }, 'system'),
      (e: { code?: string; message?: string }) =>
        e.code === 'ALREADY_EXISTS' && /token "bootstrap" already exists/.test(e.message ?? ''),
    );

    const { revoked, token } = await store.replaceTokens(
      { kind: 'admin', name: 'bootstrap' },
      { kind: 'admin', name: 'bootstrap', hash: 'h-new' },
      'cli:reset-admin-token',
    );
    assert.equal(revoked, 1);
    assert.equal(await store.findTokenByHash('h-old'), undefined);
    assert.equal((await store.findTokenByHash('h-new'))?.id, token.id);
    assert.ok(await store.findTokenByHash('h-ci'), 'another admin token is kept');
    assert.ok(await store.findTokenByHash('h-read'), 'a read token is kept');
    const events = (await store.listEvents()).slice(3).map((e) => [e.kind, e.subject, e.actor]);
    assert.deepEqual(events, [
      ['token.revoked', 'token:bootstrap', 'cli:reset-admin-token'],
      ['token.created', 'token:bootstrap', 'cli:reset-admin-token'],
    ]);

    // A clash on the new hash (unique) rolls everything back: the current token is not revoked.
    await assert.rejects(
      store.replaceTokens(
        { kind: 'admin', name: 'bootstrap' },
        { kind: 'admin', name: 'bootstrap', hash: 'h-ci' },
        'x',
      ),
    );
    assert.ok(await store.findTokenByHash('h-new'));
    assert.equal((await store.listEvents()).length, 5);
  });
});
