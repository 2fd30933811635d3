/**
 * The planner loop retries a failed order when its backoff ends, not a planner interval later: a certificate an
 * emergency campaign (or an urgent renewal) needs now must not wait an hour because the CA hiccupped once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/core/clock.ts';
import { CertfleetError } from '../../src/core/errors.ts';
import type { AcmeRuntime } from '../../src/hub/acme/acme-runtime.ts';
import { openHubContext } from '../../src/hub/hub.ts';
import { DEFAULT_POLICY } from '../../src/hub/planner/index.ts';
import { PlannerService } from '../../src/hub/planner-service.ts';
import { Issuance } from '../../src/hub/renewal/issuance.ts';
import { RateLimitStore } from '../../src/hub/renewal/rate-limit-store.ts';
import { RenewalService } from '../../src/hub/renewal/renewal-service.ts';
import type { Issuer } from '../../src/issuers/issuer.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';
import { onCleanup } from '../helpers/cleanup.ts';

const HOUR_MS = 3_600_000;

test('a campaign certificate whose order failed once is reissued after its backoff, with the next planner pass an hour away', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-planner-retry-'));
  const store = await openSqliteStore(join(dir, 'hub.db'), systemClock);
  onCleanup(t, async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const ctx = await openHubContext({ dataDir: dir, env: {}, clock: systemClock, store });
  ctx.logger.level = 'silent';
  const ca = ctx.internalCa;
  let refuse = 0;
  const flaky: Issuer = {
    kind: 'internal',
    issue: (req) => {
      if (refuse > 0) {
        refuse--;
        return Promise.reject(new CertfleetError('UNREACHABLE', 'the CA did not answer', 'retry later'));
      }
      return ca.issue(req);
    },
  };
  ctx.issuers.set('ca', flaky);
  const acme = { entries: new Map() } as unknown as AcmeRuntime;
  const issuance = new Issuance(ctx, { rateLimits: new RateLimitStore(ctx, acme) });
  // A short backoff, so the retry comes within the test; the planner's interval stays an hour.
  const renewal = new RenewalService(ctx, issuance, acme, {
    ...DEFAULT_POLICY,
    backoffBaseMs: 100,
    backoffCapFloorMs: 100,
  });
  const planner = new PlannerService(renewal, { intervalMs: HOUR_MS });
  onCleanup(t, async () => {
    await planner.stop();
    await renewal.close();
  });

  const cert = await issuance.create(
    { name: 'web', sans: ['web.example.test'], keyType: 'ecdsa-p256', issuer: 'ca', lifetimeDays: 30 },
    'test',
  );
  const first = (await store.currentVersion(cert.id))!;
  // marked as an emergency campaign marks it, and the CA refuses the next order once
  await store.setRenewalState(cert.id, {
    reissueRequested: { at: new Date().toISOString(), reason: 'campaign c1', urgent: true, campaignId: 'c1' },
  });
  refuse = 1;

  const passes: Array<{ issued: string[]; failed: number; retryAt?: string }> = [];
  const runOnce = planner.runOnce.bind(planner);
  t.mock.method(planner, 'runOnce', async () => {
    const r = await runOnce();
    passes.push({ issued: r.issued, failed: r.failed.length, ...(r.retryAt ? { retryAt: r.retryAt } : {}) });
    return r;
  });
  planner.start();
  const deadline = Date.now() + 30_000;
  while (passes.filter((p) => p.issued.length).length === 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));

  assert.equal(passes[0]?.failed, 1, `passes: ${JSON.stringify(passes)}`);
  assert.ok(passes[0].retryAt, 'the failed pass says when the backoff ends');
  assert.deepEqual(passes.at(-1)?.issued, ['web'], `passes: ${JSON.stringify(passes)}`);
  assert.notEqual((await store.currentVersion(cert.id))!.id, first.id, 'a new version replaced the first');
});
