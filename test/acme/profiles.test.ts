import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.ts';
import { MemoryAccountStore } from '../../src/issuers/acme/account-store.ts';
import {
  HubHttp01Solver,
  MemoryHttp01Store,
  startHttp01Listener,
} from '../../src/solvers/http01-responder.ts';
import { firstOffered } from '../../src/solvers/solver.ts';
import { isCertfleetError } from '../../src/core/errors.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { startAcmeFront, type AcmeFront } from '../helpers/acme-front.ts';
import { suiteCleanup } from '../helpers/cleanup.ts';

const rand = () => `${randomBytes(5).toString('hex')}.example.test`;
const PROFILES = {
  classic: 'The same profile you are accustomed to',
  shortlived: 'A short-lived certificate, valid for about 160 hours',
};

describe('ACME profiles through the profile-aware front in front of Pebble', () => {
  let pebble: Pebble;
  let front: AcmeFront;
  const store = new MemoryHttp01Store();
  const atEnd = suiteCleanup();
  const issuerFor = (name: string) => {
    const issuer = new AcmeIssuer({
      name,
      directoryUrl: front.directoryUrl,
      caPem: pebble.caPem,
      termsOfServiceAgreed: true,
      accountStore: new MemoryAccountStore(),
      solvers: firstOffered([new HubHttp01Solver(store)]),
    });
    atEnd(() => issuer.close());
    return issuer;
  };
  const order = (issuer: AcmeIssuer, profile?: string) =>
    issuer.issue({ certificateName: 'p', sans: [rand()], keyType: 'ecdsa-p256', lifetimeDays: 90, profile });

  before(async () => {
    pebble = await startPebble();
    atEnd(() => pebble.stop());
    front = await startAcmeFront(pebble);
    atEnd(() => front.stop());
    const listener = await startHttp01Listener({ host: '127.0.0.1', port: pebble.httpPort, store });
    atEnd(() => listener.close());
  });

  test('an order for an offered profile carries it in new-order and is issued', async () => {
    front.profiles = PROFILES;
    const steps: string[] = [];
    const issuer = issuerFor('with-profiles');
    const v = await issuer.issue({
      certificateName: 'p',
      sans: [rand()],
      keyType: 'ecdsa-p256',
      lifetimeDays: 90,
      profile: 'shortlived',
      onStep: (s) => steps.push(s.detail),
    });
    assert.match(v.certPem, /BEGIN CERTIFICATE/);
    assert.equal(front.orderProfiles.at(-1), 'shortlived');
    assert.ok(
      steps.some((d) => d.includes('(profile shortlived)')),
      steps.join('\n'),
    );
  });

  test('without a profile the order carries none (the CA picks its default)', async () => {
    front.profiles = PROFILES;
    await order(issuerFor('default-profile'));
    assert.equal(front.orderProfiles.at(-1), undefined);
  });

  test('a profile the directory does not offer is refused before any order, naming those offered', async () => {
    front.profiles = PROFILES;
    const before = front.orderProfiles.length;
    await assert.rejects(order(issuerFor('typo'), 'shortlive'), (e: unknown) => {
      assert.ok(isCertfleetError(e));
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.match(e.message, /does not offer profile "shortlive"; it offers: classic, shortlived/);
      assert.match(e.hint ?? '', /one of: classic, shortlived/);
      return true;
    });
    assert.equal(front.orderProfiles.length, before, 'no new-order was sent');
  });

  test('a CA that advertises no profiles: a profile is refused with a hint to remove it', async () => {
    front.profiles = undefined;
    await assert.rejects(order(issuerFor('no-profiles'), 'shortlived'), (e: unknown) => {
      assert.ok(isCertfleetError(e));
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.match(e.message, /offers no profiles/);
      assert.match(e.hint ?? '', /remove the profile/);
      return true;
    });
  });

  test("the CA's invalidProfile (profiles changed since the directory was read) names what it offers now", async () => {
    front.profiles = PROFILES;
    const issuer = issuerFor('changed');
    await order(issuer, 'classic'); // caches the directory with both profiles
    front.profiles = { tlsserver: 'TLS server certificates only' };
    await assert.rejects(order(issuer, 'shortlived'), (e: unknown) => {
      assert.ok(isCertfleetError(e));
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.match(e.message, /invalidProfile/);
      assert.match(e.message, /offered: tlsserver/);
      assert.equal(
        front.orderProfiles.at(-1),
        'shortlived',
        'the order reached the CA and was refused there',
      );
      return true;
    });
    // The issuer re-read the directory: the next order is checked against the new list before it is sent.
    const sent = front.orderProfiles.length;
    await assert.rejects(order(issuer, 'classic'), /it offers: tlsserver/);
    assert.equal(front.orderProfiles.length, sent);
    front.profiles = PROFILES;
  });
});
