/**
 * Subscriptions and endpoints from the CLI, through the real binary against a real hub: `subscribe` with every
 * deployment option, `subscription list|show|rm`, `endpoint set`, and bad input refused with exit 2 (usage) or 1
 * (not found), naming the problem and the fix, with the hub unchanged.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

async function hubWithFleet(t: TestContext): Promise<{ hub: TestHub; env: NodeJS.ProcessEnv }> {
  const hub = await startTestHub(t);
  const env = {
    CERTFLEET_HUB: hub.url,
    CERTFLEET_TOKEN: hub.token,
    CERTFLEET_CA_FILE: join(hub.dataDir, 'ca.pem'),
  };
  await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.example.test'] });
  await hub.client.post('/api/v1/certificates', { name: 'api', sans: ['api.example.test'] });
  await hub.client.post('/api/v1/endpoints', {
    name: 'web1',
    probeTargets: [{ host: '127.0.0.1', port: 443 }],
  });
  await hub.client.post('/api/v1/endpoints', { name: 'web2' });
  return { hub, env };
}

const ok = async (args: string[], env: NodeJS.ProcessEnv) => {
  const r = await runCli(args, env);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r;
};

const FULL = [
  '--output',
  'fullchain:/etc/ssl/web/fullchain.pem',
  '--output',
  'key:/etc/ssl/web/key.pem',
  '--owner',
  'root',
  '--group',
  'ssl-cert',
  '--mode',
  '0640',
  '--output',
  'pkcs12:/etc/ssl/web/web.p12',
  '--password-ref',
  'env:WEB_P12_PASSWORD',
  '--config-test',
  'nginx -t',
  '--reload',
  'nginx -s reload',
  '--verify',
  '127.0.0.1:8443/web.example.test',
  '--window',
  '0 2 * * 1-5',
  '--window-duration',
  '2h',
  '--timezone',
  'Europe/Berlin',
];

describe('subscribe, subscription list|show|rm', () => {
  test('every option reaches the subscription; list filters; show by name or id; rm removes it', async (t) => {
    const { hub, env } = await hubWithFleet(t);
    await ok(['subscribe', 'web1', 'web', ...FULL], env);
    await ok(['subscribe', 'web2', 'web', '--output', 'fullchain:/srv/web.pem'], env);
    await ok(['subscribe', 'web2', 'api', '--output', 'fullchain:/srv/api.pem'], env);

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

    const onWeb2 = JSON.parse(
      (await ok(['--json', 'subscription', 'list', '--endpoint', 'web2'], env)).stdout,
    );
    assert.deepEqual(
      onWeb2.map((s: any) => s.certificate),
      ['api', 'web'],
    );
    const ofWeb = await ok(['subscription', 'list', '--certificate', 'web'], env);
    assert.match(ofWeb.stdout, /^ID\s+ENDPOINT\s+CERTIFICATE\s+OUTPUTS\s+RELOAD\s+STATE$/m);
    assert.equal(ofWeb.stdout.trim().split('\n').length, 3, ofWeb.stdout);
    assert.doesNotMatch(ofWeb.stdout, /\bapi\b/);

    const shown = await ok(['subscription', 'show', 'web1/web'], env);
    assert.match(shown.stdout, new RegExp(`^subscription ${full.id}$`, 'm'));
    assert.match(shown.stdout, /key \/etc\/ssl\/web\/key\.pem \(owner root, group ssl-cert, mode 0640\)/);
    assert.match(shown.stdout, /window\s+"0 2 \* \* 1-5" for 120 min \(Europe\/Berlin\)/);
    assert.match(shown.stdout, /verify\s+127\.0\.0\.1:8443\/web\.example\.test/);
    assert.match(shown.stdout, /deployment\s+pending/);
    const byId = JSON.parse((await ok(['--json', 'subscription', 'show', full.id], env)).stdout);
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

describe('bad input is refused, names the problem and the fix, and changes nothing', () => {
  const W = ['--output', 'fullchain:/srv/web.pem'];
  const cases: Array<[string, string[], number, RegExp]> = [
    [
      '--mode before any --output',
      ['subscribe', 'web1', 'web', '--mode', '0640', ...W],
      2,
      /--mode applies to the --output before it; give --output FORMAT:PATH first/,
    ],
    [
      'an output without a path',
      ['subscribe', 'web1', 'web', '--output', 'fullchain'],
      2,
      /"fullchain" is not FORMAT:PATH/,
    ],
    [
      'two --owner for one output',
      ['subscribe', 'web1', 'web', ...W, '--owner', 'a', '--owner', 'b'],
      2,
      /already has --owner a/,
    ],
    [
      'a mode that is not octal',
      ['subscribe', 'web1', 'web', ...W, '--mode', '0999'],
      2,
      /outputs\[0\]\.mode: must be an octal mode such as "0640"\nhint: fix the flags/,
    ],
    [
      'an unknown format',
      ['subscribe', 'web1', 'web', '--output', 'pfx:/srv/web.pfx'],
      2,
      /outputs\[0\]\.format: must be one of: cert, chain/,
    ],
    [
      'a pkcs12 output without --password-ref',
      ['subscribe', 'web1', 'web', '--output', 'pkcs12:/srv/web.p12'],
      2,
      /outputs\[0\]\.passwordRef: pkcs12 and jks outputs need a passwordRef/,
    ],
    [
      'a password reference of the wrong form',
      ['subscribe', 'web1', 'web', '--output', 'pkcs12:/srv/web.p12', '--password-ref', 'hunter2'],
      2,
      /outputs\[0\]\.passwordRef: must be "env:NAME" or "file:\/absolute\/path"/,
    ],
    [
      'an invalid cron expression',
      ['subscribe', 'web1', 'web', ...W, '--window', '0 25 * * *', '--window-duration', '1h'],
      2,
      /window\.cron: "0 25 \* \* \*" is not a valid cron expression/,
    ],
    [
      'an unknown time zone',
      [
        'subscribe',
        'web1',
        'web',
        ...W,
        '--window',
        '0 2 * * *',
        '--window-duration',
        '1h',
        '--timezone',
        'Mars/Olympus',
      ],
      2,
      /window\.timezone: "Mars\/Olympus" is not an IANA time zone/,
    ],
    [
      '--window without its duration',
      ['subscribe', 'web1', 'web', ...W, '--window', '0 2 * * *'],
      2,
      /--window needs --window-duration[^\n]*\nhint: add --window-duration, e\.g\. --window-duration 2h/,
    ],
    [
      '--timezone without --window',
      ['subscribe', 'web1', 'web', ...W, '--timezone', 'UTC'],
      2,
      /--timezone needs --window/,
    ],
    [
      'a window duration in seconds',
      ['subscribe', 'web1', 'web', ...W, '--window', '0 2 * * *', '--window-duration', '90s'],
      2,
      /"90s" is not a whole number of minutes/,
    ],
    [
      'a verify target without a port',
      ['subscribe', 'web1', 'web', ...W, '--verify', 'web.example.test'],
      2,
      /"web\.example\.test" is not HOST:PORT\[\/SNI\]/,
    ],
    [
      'a subscription to an unknown certificate',
      ['subscribe', 'web1', 'ghost', ...W],
      1,
      /certificate "ghost" not found\nhint: list certificates/,
    ],
    [
      'a reference that is neither id nor ENDPOINT/CERT',
      ['subscription', 'show', 'web1'],
      2,
      /"web1" is neither a subscription id nor ENDPOINT\/CERTIFICATE/,
    ],
    [
      'rm of a subscription that does not exist',
      ['subscription', 'rm', 'web2/web'],
      1,
      /endpoint web2 is not subscribed to certificate web\nhint: subscribe it with `certfleet subscribe web2 web/,
    ],
    [
      'list for an unknown endpoint',
      ['subscription', 'list', '--endpoint', 'ghost'],
      1,
      /endpoint "ghost" not found/,
    ],
    [
      'endpoint set with nothing to change',
      ['endpoint', 'set', 'web1'],
      2,
      /nothing to change on endpoint web1\nhint: give --probe/,
    ],
    [
      '--probe with --clear-probes',
      ['endpoint', 'set', 'web1', '--probe', 'a.test:443', '--clear-probes'],
      2,
      /--probe and --clear-probes contradict each other/,
    ],
    [
      'a probe target without a port',
      ['endpoint', 'set', 'web1', '--probe', 'a.test'],
      2,
      /"a\.test" is not HOST:PORT\[\/SNI\]/,
    ],
    ['a label without a value', ['endpoint', 'set', 'web1', '--label', 'team'], 2, /"team" is not KEY=VALUE/],
    [
      'endpoint set on an unknown endpoint',
      ['endpoint', 'set', 'ghost', '--probe', 'a.test:443'],
      1,
      /endpoint "ghost" not found/,
    ],
  ];

  test('each refused command, one hub', async (t) => {
    const { hub, env } = await hubWithFleet(t);
    await ok(['subscribe', 'web1', 'web', ...FULL], env);
    const state = async () => ({
      subscriptions: await hub.ctx.store.listSubscriptions(),
      endpoints: await hub.ctx.store.listEndpoints(),
      events: (await hub.ctx.store.listEvents({ limit: 1000 })).length,
      revision: await hub.ctx.store.revision(),
    });
    const before = await state();
    for (const [what, args, code, message] of cases) {
      const r = await runCli(args, env);
      assert.equal(r.code, code, `${what}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, message, what);
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
      assert.deepEqual(await state(), before, `${what} changed the hub`);
    }
  });
});
