/** `certfleet endpoint set`, through the real binary against a real hub. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hubWithFleet, ok } from '../helpers/cli-fleet.ts';

describe('endpoint set', () => {
  test('changes probe targets and labels without touching the subscriptions', async (t) => {
    const { hub, env } = await hubWithFleet(t);
    await ok(['subscribe', 'web1', 'web', '--output', 'fullchain:/srv/web.pem'], env);
    const [sub] = await hub.ctx.store.listSubscriptions();
    const set = await ok(
      [
        'endpoint',
        'set',
        'web1',
        '--probe',
        '10.0.0.5:443/web.example.test',
        '--probe',
        '[2001:db8::5]:8443',
      ],
      env,
    );
    assert.match(
      set.stdout,
      /updated endpoint web1: probes 10\.0\.0\.5:443\/web\.example\.test,2001:db8::5:8443/,
    );
    const e = (await hub.ctx.store.getEndpoint('web1'))!;
    assert.deepEqual(e.probeTargets, [
      { host: '10.0.0.5', port: 443, sni: 'web.example.test' },
      { host: '2001:db8::5', port: 8443 },
    ]);
    assert.deepEqual(await hub.ctx.store.listSubscriptions(), [sub]);

    await ok(['endpoint', 'set', 'web1', '--label', 'team=web', '--label', 'site=fra'], env);
    const labelled = (await hub.ctx.store.getEndpoint('web1'))!;
    assert.deepEqual(labelled.labels, { team: 'web', site: 'fra' });
    assert.equal(labelled.probeTargets.length, 2, 'labels alone leave the probes');
    await ok(['endpoint', 'set', 'web1', '--clear-probes'], env);
    assert.deepEqual((await hub.ctx.store.getEndpoint('web1'))!.probeTargets, []);
    assert.deepEqual(await hub.ctx.store.listSubscriptions(), [sub]);
  });
});
