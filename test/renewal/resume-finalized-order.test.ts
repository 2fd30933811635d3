/**
 * One renewal is one certificate at the CA, even when the hub stops between the CA finalizing the order and the
 * version being stored: the order is recorded (with its sealed key) before finalize, and the next attempt resumes
 * it. The stop is injected as a failure of the version's commit; Pebble counts what it issued.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { generatePrivateKeyPem } from '../../src/pki/keys.ts';
import { acmeOrderKeyContext } from '../../src/store/meta-catalogue.ts';
import type { RenewalCommit, Store } from '../../src/store/store.ts';
import { pebbleHubConfig, randomName, startAcmeHub } from '../helpers/acme-hub.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startPebble } from '../helpers/pebble.ts';

const normalSerial = (s: string) => s.toLowerCase().replace(/^0+/, '');

/** The next version's commit fails once, as if the hub died after the CA finalized the order. */
function stopBeforeStoringOnce(store: Store) {
  const commit = store.commitRenewal.bind(store);
  let stopped = false;
  store.commitRenewal = async (c: RenewalCommit) => {
    if (c.version && !stopped) {
      stopped = true;
      throw new Error('the hub stopped before storing the version');
    }
    return commit(c);
  };
}

/**
 * A hub with certificate `web` from Pebble whose renewal was finalized by the CA but not stored (the hub "died":
 * storing the version failed once), so its order stays recorded. `issuedBefore`: Pebble's count before it.
 */
async function hubWithUnstoredRenewal(t: TestContext) {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const hub = await startAcmeHub(t, await pebbleHubConfig(t, pebble));
  const { store } = hub.ctx;
  await hub.client.post('/api/v1/certificates', {
    name: 'web',
    sans: [randomName('resume-')],
    issuer: 'pebble',
  });
  const certId = (await store.getCertificate('web'))!.id;
  const issuedBefore = pebble.issuedSerials().length;
  stopBeforeStoringOnce(store);
  await assert.rejects(hub.renewal.renewNow('web', 'admin:test'));
  return { pebble, hub, store, certId, issuedBefore };
}

test('an order finalized before its version was stored is resumed by the next attempt, not ordered again', async (t) => {
  const { pebble, hub, store, certId, issuedBefore } = await hubWithUnstoredRenewal(t);
  assert.equal(pebble.issuedSerials().length, issuedBefore + 1, 'the CA issued the renewal');
  assert.ok(await store.acmeOrder(certId), 'its order stays recorded');

  const resumed = await hub.renewal.renewNow('web', 'admin:test');
  assert.equal(pebble.issuedSerials().length, issuedBefore + 1, 'no second certificate at the CA');
  assert.equal(normalSerial(resumed.serial), normalSerial(pebble.issuedSerials().at(-1)!));
  assert.equal((await store.currentVersion(certId))?.id, resumed.id);
  assert.equal(await store.acmeOrder(certId), undefined, 'the stored version closes the order');

  const next = await hub.renewal.renewNow('web', 'admin:test');
  assert.equal(pebble.issuedSerials().length, issuedBefore + 2, 'the next renewal orders anew');
  assert.notEqual(next.serial, resumed.serial);
});

test('a recorded order that cannot be completed gives way to a new order instead of blocking renewal', async (t) => {
  const { pebble, hub, store, certId, issuedBefore } = await hubWithUnstoredRenewal(t);
  // the recorded key no longer matches the order's certificate (a restored backup, a damaged row): never usable
  const recorded = (await store.acmeOrder(certId))!;
  const otherKey = await generatePrivateKeyPem('ecdsa-p256');
  await store.recordAcmeOrder({
    ...recorded,
    sealedKey: hub.ctx.sealer.seal(otherKey, acmeOrderKeyContext(certId)),
  });

  const renewed = await hub.renewal.renewNow('web', 'admin:test');
  assert.equal(pebble.issuedSerials().length, issuedBefore + 2, 'a new order was placed and issued');
  assert.equal(normalSerial(renewed.serial), normalSerial(pebble.issuedSerials().at(-1)!));
  assert.equal((await store.currentVersion(certId))?.id, renewed.id);
  assert.equal(await store.acmeOrder(certId), undefined);
});

test('a first issuance finalized before its certificate was stored is resumed when the certificate is added again', async (t) => {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const hub = await startAcmeHub(t, await pebbleHubConfig(t, pebble));
  const { store } = hub.ctx;
  const sans = [randomName('first-')];
  const issuedBefore = pebble.issuedSerials().length;
  stopBeforeStoringOnce(store);
  await assert.rejects(hub.client.post('/api/v1/certificates', { name: 'web', sans, issuer: 'pebble' }));
  assert.equal(pebble.issuedSerials().length, issuedBefore + 1, 'the CA issued it');
  assert.equal(await store.getCertificate('web'), undefined, 'no certificate without its first version');
  const [order] = await store.listAcmeOrders();
  assert.deepEqual(order.sans, sans, 'the order is kept with its names');

  // an order for other names, or for another key type, is not taken
  const other = await hub.client.post<{ id: string }>('/api/v1/certificates', {
    name: 'other',
    sans: [randomName('other-')],
    issuer: 'pebble',
  });
  assert.notEqual(other.id, order.certificateId);
  assert.equal(pebble.issuedSerials().length, issuedBefore + 2);

  const created = await hub.client.post<{ id: string }>('/api/v1/certificates', {
    name: 'web',
    sans,
    issuer: 'pebble',
  });
  assert.equal(pebble.issuedSerials().length, issuedBefore + 2, 'no second certificate at the CA for web');
  assert.equal(created.id, order.certificateId, 'the certificate takes the id its order was recorded under');
  const version = (await store.currentVersion(created.id))!;
  assert.equal(normalSerial(version.serial), normalSerial(pebble.issuedSerials()[issuedBefore]));
  assert.deepEqual(await store.listAcmeOrders(), [], 'the stored version closes the order');
});

test('a recorded first-issuance order for another key type is not resumed: the certificate gets a new key and order', async (t) => {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const hub = await startAcmeHub(t, await pebbleHubConfig(t, pebble));
  const { store } = hub.ctx;
  const sans = [randomName('keytype-')];
  stopBeforeStoringOnce(store);
  await assert.rejects(
    hub.client.post('/api/v1/certificates', { name: 'web', sans, issuer: 'pebble', keyType: 'ecdsa-p256' }),
  );
  const issuedBefore = pebble.issuedSerials().length;
  const created = await hub.client.post<{ id: string }>('/api/v1/certificates', {
    name: 'web',
    sans,
    issuer: 'pebble',
    keyType: 'ecdsa-p384',
  });
  assert.equal(pebble.issuedSerials().length, issuedBefore + 1, 'a new order was placed');
  const version = (await store.currentVersion(created.id))!;
  assert.match(version.certPem, /BEGIN CERTIFICATE/);
  assert.deepEqual(await store.listAcmeOrders(), []);
});
