/**
 * Subscriptions from the CLI, through the real binary against a real hub: `subscribe` with every deployment
 * option, `subscription list|show|rm`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { FULL, hubWithFleet, ok } from '../helpers/cli-fleet.ts';

describe('subscribe, subscription list|show|rm', () => {
  test('every option reaches the subscription; list filters; show by name or id; rm removes it', async (t) => {
    const { hub, env } = await hubWithFleet(t);
    // Independent commands run side by side: each is a whole Node process, slow on a busy machine.
    await Promise.all([
      ok(['subscribe', 'web1', 'web', ...FULL], env),
      ok(['subscribe', 'web2', 'web', '--output', 'fullchain:/srv/web.pem'], env),
      ok(['subscribe', 'web2', 'api', '--output', 'fullchain:/srv/api.pem'], env),
    ]);

    const all = JSON.parse((await ok(['--json', 'subscription', 'list'], env)).stdout);
    assert.deepEqual(
      all.map((s: any) => `${s.certificate}@${s.endpoint}`),
      ['api@web2', 'web@web1', 'web@web2'],
    );
    const full = all[1];
    assert.deepEqual(full.outputs, [
      { format: 'fullchain', path: '/etc/ssl/web/fullchain.pem' },
      { format: 'key', path: '/etc/ssl/web/key.pem', owner: 'root', group: 'ssl-cert', mode: '0640' },
      { format: 'pkcs12', path: '/etc/ssl/web/web.p12', passwordRef: 'env:WEB_P12_PASSWORD' },
    ]);
    assert.deepEqual(full.window, { cron: '0 2 * * 1-5', durationMinutes: 120, timezone: 'Europe/Berlin' });
    assert.deepEqual(full.verify, { host: '127.0.0.1', port: 8443, sni: 'web.example.test' });
    assert.equal(full.configTest, 'nginx -t');
    assert.equal(full.reload, 'nginx -s reload');
    assert.equal(full.deployment.state, 'pending');

    const [web2List, ofWeb, shown, byIdShown] = await Promise.all([
      ok(['--json', 'subscription', 'list', '--endpoint', 'web2'], env),
      ok(['subscription', 'list', '--certificate', 'web'], env),
      ok(['subscription', 'show', 'web1/web'], env),
      ok(['--json', 'subscription', 'show', full.id], env),
    ]);
    const onWeb2 = JSON.parse(web2List.stdout);
    assert.deepEqual(
      onWeb2.map((s: any) => s.certificate),
      ['api', 'web'],
    );
    assert.match(ofWeb.stdout, /^ID\s+ENDPOINT\s+CERTIFICATE\s+OUTPUTS\s+RELOAD\s+STATE$/m);
    assert.equal(ofWeb.stdout.trim().split('\n').length, 3, ofWeb.stdout);
    assert.doesNotMatch(ofWeb.stdout, /\bapi\b/);

    assert.match(shown.stdout, new RegExp(`^subscription ${full.id}$`, 'm'));
    assert.match(shown.stdout, /key \/etc\/ssl\/web\/key\.pem \(owner root, group ssl-cert, mode 0640\)/);
    assert.match(shown.stdout, /window\s+"0 2 \* \* 1-5" for 120 min \(Europe\/Berlin\)/);
    assert.match(shown.stdout, /verify\s+127\.0\.0\.1:8443\/web\.example\.test/);
    assert.match(shown.stdout, /deployment\s+pending/);
    const byId = JSON.parse(byIdShown.stdout);
    assert.deepEqual(byId, full);

    const removed = await ok(['subscription', 'rm', 'web1/web'], env);
    assert.match(removed.stdout, new RegExp(`removed subscription web1/web \\(${full.id}\\)`));
    assert.equal(await hub.ctx.store.getSubscription(full.id), undefined);
    const gone = await runCli(['subscription', 'show', full.id], env);
    assert.equal(gone.code, 1);
    assert.match(
      gone.stderr,
      /subscription ".*" not found\nhint: list subscriptions with `certfleet subscription list`/,
    );
  });

  test('subscribing again replaces the whole spec of that subscription, keeping its id', async (t) => {
    const { env } = await hubWithFleet(t);
    await ok(['subscribe', 'web1', 'web', ...FULL], env);
    const before = JSON.parse((await ok(['--json', 'subscription', 'show', 'web1/web'], env)).stdout);
    await ok(['subscribe', 'web1', 'web', '--output', 'fullchain:/srv/web.pem'], env);
    const after = JSON.parse((await ok(['--json', 'subscription', 'show', 'web1/web'], env)).stdout);
    assert.equal(after.id, before.id);
    assert.deepEqual(after.outputs, [{ format: 'fullchain', path: '/srv/web.pem' }]);
    assert.equal(after.window, undefined);
  });
});
