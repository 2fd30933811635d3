/**
 * One catalogue of meta keys and sealed items (src/store/meta-catalogue.ts): every key a real hub stores is in it,
 * every sealed item it lists opens and matches, keys are built only there, and `certfleet hub check-store` (the
 * real binary) says which item is broken.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { openDataDir } from '../../src/hub/data-dir.ts';
import { systemClock } from '../../src/core/clock.ts';
import { createLogger } from '../../src/core/log.ts';
import { generatePrivateKeyPem } from '../../src/pki/keys.ts';
import { META, META_CATALOGUE, acmeOrderKeyContext, metaEntryOf } from '../../src/store/meta-catalogue.ts';
import { pebbleHubConfig, randomName, startAcmeHub } from '../helpers/acme-hub.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';
import { startPebble } from '../helpers/pebble.ts';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = resolve(import.meta.dirname, '../..');

interface CheckJson {
  ok: boolean;
  rows: Array<{ item: string; key: string; ok: boolean; detail: string }>;
  counts: {
    metaKeys: number;
    certificates: number;
    versions: number;
    acmeAccounts: number;
    acmeOrders: number;
  };
}

const checkStore = async (dataDir: string) => {
  const r = await runCli(['hub', 'check-store', '--data-dir', dataDir, '--json']);
  return {
    code: r.code,
    stderr: r.stderr,
    report: r.stdout ? (JSON.parse(r.stdout) as CheckJson) : undefined,
  };
};

describe('the catalogue of meta keys and sealed items', () => {
  test('every key a hub with an ACME and an internal-CA certificate stores is in the catalogue, and check-store passes them all', async (t) => {
    const pebble = await startPebble();
    onCleanup(t, () => pebble.stop());
    const hub = await startAcmeHub(t, await pebbleHubConfig(t, pebble));
    await hub.client.post('/api/v1/certificates', {
      name: 'acme-one',
      sans: [randomName()],
      issuer: 'pebble',
    });
    await hub.client.post('/api/v1/certificates', { name: 'internal-one', sans: ['svc.internal.test'] });
    await hub.planner!.runOnce();
    await hub.verification.alerts.runOnce();
    await hub.close();

    const stored = (await keysOf(hub.dataDir)).sort();
    for (const key of [
      META.dataKey.key,
      META.revision.key,
      META.internalCaRoot.key,
      META.internalCaRootKey.key,
      META.internalCaIntermediate.key,
      META.internalCaIntermediateKey.key,
      META.hubTlsCert.key,
      META.hubTlsKey.key,
      META.plannerLastRun.key,
      META.alertState.key,
    ]) {
      assert.ok(stored.includes(key), `${key} is stored`);
    }
    assert.ok(
      stored.some((k) => k.startsWith('acme.account.')),
      'the ACME account is stored',
    );
    assert.deepEqual(
      stored.filter((k) => !metaEntryOf(k)),
      [],
      'no stored key is missing from the catalogue',
    );

    const { code, report } = await checkStore(hub.dataDir);
    assert.deepEqual(
      report!.rows.filter((r) => !r.ok),
      [],
    );
    assert.equal(code, 0);
    assert.deepEqual(report!.counts, {
      metaKeys: stored.length,
      certificates: 2,
      versions: 2,
      acmeAccounts: 1,
      acmeOrders: 0,
    });
    const sealedChecked = report!.rows.filter((r) => /unseals/.test(r.detail)).map((r) => r.key);
    for (const key of [META.internalCaRootKey.key, META.internalCaIntermediateKey.key, META.hubTlsKey.key]) {
      assert.ok(sealedChecked.includes(key), `${key} was unsealed and matched`);
    }
    assert.equal(sealedChecked.filter((k) => k.startsWith('versions/')).length, 2);
    assert.ok(sealedChecked.some((k) => k.startsWith('acme.account.')));
    assert.ok(
      report!.rows.some((r) => r.key === META.dataKey.key && r.detail === 'unwraps under the master key'),
    );
  });

  test('a broken item fails check-store with exit 1, naming the item; the store is not changed by the check', async (t) => {
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.internal.test'] });
    await hub.client.post('/api/v1/certificates', { name: 'mail', sans: ['mail.internal.test'] });
    await hub.close();
    const dbFile = join(hub.dataDir, 'hub.db');

    // A key sealed under the right context that belongs to no certificate, a version key moved to another version,
    // and a key nothing explains.
    const { store, sealer } = await openStoreOf(hub.dataDir);
    const strangerKey = sealer.seal(await generatePrivateKeyPem('ecdsa-p256'), META.hubTlsKey.sealContext);
    await store.close();
    const db = new Database(dbFile);
    const versions = db.prepare('SELECT id, sealed_key FROM versions ORDER BY id').all() as Array<{
      id: string;
      sealed_key: string;
    }>;
    db.prepare('UPDATE versions SET sealed_key = ? WHERE id = ?').run(versions[1].sealed_key, versions[0].id);
    db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(strangerKey, META.hubTlsKey.key);
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('mystery.key', 'x');
    db.close();
    const before = readFileSync(dbFile);

    const { code, report } = await checkStore(hub.dataDir);
    assert.equal(code, 1);
    const failed = report!.rows.filter((r) => !r.ok);
    assert.deepEqual(
      failed.map((r) => r.key).sort(),
      [META.hubTlsKey.key, 'mystery.key', `versions/${versions[0].id}`].sort(),
    );
    assert.match(
      failed.find((r) => r.key === META.hubTlsKey.key)!.detail,
      /does not match hub_tls\.cert_pem/,
    );
    assert.match(failed.find((r) => r.key.startsWith('versions/'))!.detail, /could not be decrypted/);
    assert.match(failed.find((r) => r.key === 'mystery.key')!.detail, /not in the catalogue/);
    assert.ok(readFileSync(dbFile).equals(before), 'the check wrote nothing');

    const human = await runCli(['hub', 'check-store', '--data-dir', hub.dataDir]);
    assert.equal(human.code, 1);
    assert.match(human.stdout, /FAILED\s+unknown meta key\s+mystery\.key/);
    assert.match(human.stdout, /3 failed/);
  });

  test('the key of an ACME order being finalized is checked: it opens under its own certificate, and a key moved from another certificate fails with exit 1', async (t) => {
    const hub = await startTestHub(t);
    const web = await hub.client.post<{ id: string }>('/api/v1/certificates', {
      name: 'web',
      sans: ['web.internal.test'],
    });
    const mail = await hub.client.post<{ id: string }>('/api/v1/certificates', {
      name: 'mail',
      sans: ['mail.internal.test'],
    });
    await hub.close();
    const { store, sealer } = await openStoreOf(hub.dataDir);
    try {
      // as the issuance records them right before finalize; mail's key was sealed for web (moved by hand)
      for (const [id, sealedFor] of [
        [web.id, web.id],
        [mail.id, web.id],
      ]) {
        await store.recordAcmeOrder({
          certificateId: id,
          issuer: 'pebble',
          orderUrl: `https://ca.test/order/${id}`,
          sealedKey: sealer.seal(await generatePrivateKeyPem('ecdsa-p256'), acmeOrderKeyContext(sealedFor)),
          createdAt: new Date().toISOString(),
        });
      }
    } finally {
      await store.close();
    }

    const { code, report } = await checkStore(hub.dataDir);
    assert.equal(code, 1);
    assert.equal(report!.counts.acmeOrders, 2);
    const rows = report!.rows.filter((r) => r.key.startsWith('acme_orders/'));
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.key, r.ok])), {
      [`acme_orders/${web.id}`]: true,
      [`acme_orders/${mail.id}`]: false,
    });
    assert.match(rows.find((r) => r.ok)!.detail, /unseals under its certificate/);
    assert.match(rows.find((r) => !r.ok)!.item, /order being finalized for mail \(pebble\)/);
    assert.match(rows.find((r) => !r.ok)!.detail, /could not be decrypted/);
  });

  test('check-store on a directory no hub initialised is a clear error with a hint, and creates nothing', async (t) => {
    const dir = join(await tempDir(t), 'nothing-here');
    const r = await runCli(['hub', 'check-store', '--data-dir', dir]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /data directory|no hub/i);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(existsSync(dir), false);
  });

  test('every entry names the file that writes it, and no file outside the catalogue spells a catalogued key', () => {
    const sources = filesUnder(join(ROOT, 'src')).filter((f) => !f.endsWith('meta-catalogue.ts'));
    for (const entry of META_CATALOGUE) {
      assert.ok(existsSync(join(ROOT, entry.writtenBy)), `${entry.key}: ${entry.writtenBy} exists`);
      const spelled = sources.filter((f) =>
        readFileSync(f, 'utf8').includes(entry.family ? `'${entry.key}` : `'${entry.key}'`),
      );
      assert.deepEqual(spelled, [], `${entry.key} is built only in the catalogue`);
    }
  });
});

/** The store and sealer of a stopped hub's data directory. */
const openStoreOf = (dataDir: string) =>
  openDataDir({
    dataDir,
    env: {},
    logger: createLogger({ level: 'silent' }),
    clock: systemClock,
    create: false,
  });

async function keysOf(dataDir: string): Promise<string[]> {
  const db = new Database(join(dataDir, 'hub.db'), { readonly: true });
  try {
    return (db.prepare('SELECT key FROM meta').all() as Array<{ key: string }>).map((r) => r.key);
  } finally {
    db.close();
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : p.endsWith('.ts') ? [p] : [];
  });
}
