/**
 * Bad input to `subscribe`, `subscription list|show|rm` and `endpoint set`, through the real binary: refused with
 * exit 2 (usage) or 1 (not found), naming the problem and the fix, with the hub unchanged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { FULL, hubWithFleet, ok } from '../helpers/cli-fleet.ts';

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
    // Four at a time: each spawn is a whole Node process, and a busy machine runs them slowly one by one.
    for (let i = 0; i < cases.length; i += 4) {
      const batch = cases.slice(i, i + 4);
      const results = await Promise.all(batch.map(([, args]) => runCli(args, env)));
      for (const [j, [what, , code, message]] of batch.entries()) {
        const r = results[j];
        assert.equal(r.code, code, `${what}: exit ${r.code}\n${r.stderr}`);
        assert.match(r.stderr, message, what);
        assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
      }
      assert.deepEqual(await state(), before, `one of ${batch.map(([w]) => w).join(', ')} changed the hub`);
    }
  });
});
