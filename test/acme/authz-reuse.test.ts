import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.ts';
import { MemoryAccountStore } from '../../src/issuers/acme/account-store.ts';
import { inspectCertificate } from '../../src/pki/inspect.ts';
import { HubHttp01Solver, MemoryHttp01Store } from '../../src/solvers/http01-responder.ts';
import { firstOffered } from '../../src/solvers/solver.ts';
import { startAcmeFront } from '../helpers/acme-front.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startPebble } from '../helpers/pebble.ts';

test('an order the CA answers ready (authorizations reused) is finalized without reading or answering any authorization', async (t) => {
  // Pebble reuses every valid authorization (PEBBLE_AUTHZREUSE=100) and validates without a request; the
  // request-recording front in front of it shows what the issuer asked.
  const pebble = await startPebble({ alwaysValid: true, authzReuse: 100 });
  onCleanup(t, () => pebble.stop());
  const front = await startAcmeFront(pebble);
  onCleanup(t, () => front.stop());
  const issuer = new AcmeIssuer({
    name: 'pebble',
    directoryUrl: front.directoryUrl,
    termsOfServiceAgreed: true,
    caPem: pebble.caPem,
    accountStore: new MemoryAccountStore(),
    solvers: firstOffered([new HubHttp01Solver(new MemoryHttp01Store())]),
  });
  onCleanup(t, () => issuer.close());
  const names = [
    `a-${randomBytes(4).toString('hex')}.example.test`,
    `b-${randomBytes(4).toString('hex')}.example.test`,
  ];
  const authzRequests = () => front.requests.filter((r) => /^POST \/(authZ|chalZ)\//.test(r)).length;

  await issuer.issue({ certificateName: 'web', sans: names, keyType: 'ecdsa-p256', lifetimeDays: 90 });
  const first = authzRequests();
  assert.ok(
    first >= 2,
    `the first order reads and answers its two pending authorizations (${first} requests)`,
  );

  const steps: string[] = [];
  const again = await issuer.issue({
    certificateName: 'web',
    sans: names,
    keyType: 'ecdsa-p256',
    lifetimeDays: 90,
    onStep: (s) => steps.push(`${s.name}: ${s.detail}`),
  });
  assert.equal(authzRequests(), first, 'the reissue asked nothing about its (reused, valid) authorizations');
  assert.deepEqual(inspectCertificate(again.certPem).sans.sort(), [...names].sort());
  assert.ok(steps.includes('authorizations: 2 authorization(s), all valid (order ready)'), steps.join('\n'));
});
