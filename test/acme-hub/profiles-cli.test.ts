/**
 * A certificate names an ACME profile: the hub orders under it (or under its issuer's default profile), shows it,
 * and refuses, through the real binary, a profile the CA does not offer or a profile on the internal CA. Pebble 2.4
 * predates profiles, so the CA is the real Pebble behind the profile-aware front (test/helpers/acme-front.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { pebbleCaFile, pebbleIssuer, randomName } from '../helpers/acme-hub.ts';
import { startAcmeFront } from '../helpers/acme-front.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { runCli, startHubProcess } from '../helpers/cli.ts';
import { startPebble } from '../helpers/pebble.ts';
import { tempDir } from '../helpers/tmp.ts';

test('certificates ordered under ACME profiles, through the profile-aware front in front of Pebble', async (t) => {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const front = await startAcmeFront(pebble);
  onCleanup(t, () => front.stop());
  front.profiles = { classic: 'the 90-day profile', shortlived: 'about 160 hours' };
  const dir = await tempDir(t);
  const configPath = join(dir, 'hub.yaml');
  const caFile = await pebbleCaFile(t, pebble);
  await writeFile(
    configPath,
    stringify({
      issuers: [
        pebbleIssuer(pebble, caFile, { name: 'le', directoryUrl: front.directoryUrl, profile: 'classic' }),
      ],
      http01: { listen: `127.0.0.1:${pebble.httpPort}` },
      planner: { intervalSeconds: 3600 },
    }),
  );
  const hub = await startHubProcess(t, { CERTFLEET_HUB_CONFIG: configPath });
  const cli = (...args: string[]) => runCli(args, hub.env);

  const short = await cli(
    'cert',
    'add',
    'short',
    '--issuer',
    'le',
    '--profile',
    'shortlived',
    '--san',
    randomName(),
  );
  assert.equal(short.code, 0, short.stderr);
  assert.equal(front.orderProfiles.at(-1), 'shortlived');
  assert.match((await cli('cert', 'show', 'short')).stdout, /^profile\s+shortlived$/m);

  const plain = await cli('cert', 'add', 'plain', '--issuer', 'le', '--san', randomName());
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(front.orderProfiles.at(-1), 'classic', "the issuer's default profile");
  assert.match((await cli('cert', 'show', 'plain')).stdout, /^profile\s+\(issuer default\)$/m);

  const orders = front.orderProfiles.length;
  const typo = await cli(
    'cert',
    'add',
    'typo',
    '--issuer',
    'le',
    '--profile',
    'shortlive',
    '--san',
    randomName(),
  );
  assert.equal(typo.code, 1, typo.stdout);
  assert.match(typo.stderr, /does not offer profile "shortlive"; it offers: classic, shortlived/);
  assert.match(typo.stderr, /hint: set the certificate's profile to one of: classic, shortlived/);
  assert.doesNotMatch(typo.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(front.orderProfiles.length, orders, 'no order was sent');
  assert.match(
    (await cli('cert', 'show', 'typo')).stderr,
    /certificate "typo" not found/,
    'nothing left behind',
  );

  const internal = await cli('cert', 'add', 'int', '--profile', 'shortlived', '--san', 'int.example.test');
  assert.equal(internal.code, 1, internal.stdout);
  assert.match(internal.stderr, /profile "shortlived" needs an ACME issuer/);
  assert.match(internal.stderr, /hint: remove the profile/);

  const malformed = await cli(
    'cert',
    'add',
    'm',
    '--issuer',
    'le',
    '--profile',
    'short lived',
    '--san',
    randomName(),
  );
  assert.notEqual(malformed.code, 0);
  assert.match(malformed.stderr, /profile.*must be a profile name as the CA lists it/);

  // apply: a changed profile is listed as a change (and reissues); the internal CA refuses one, naming the path.
  const file = join(dir, 'fleet.yaml');
  const fleet = (profile: string) =>
    stringify({
      certificates: [{ name: 'short', sans: ['x.example.test'], issuer: 'le', profile }],
    });
  const show = await cli('cert', 'show', 'short', '--json');
  const sans = JSON.parse(show.stdout).sans as string[];
  await writeFile(
    file,
    stringify({
      certificates: [{ name: 'short', sans, issuer: 'le', lifetimeDays: 30, profile: 'classic' }],
    }),
  );
  const dry = await cli('apply', '-f', file, '--dry-run');
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /profile: shortlived → classic/);
  await writeFile(file, fleet('shortlived').replace('issuer: le', 'issuer: internal'));
  const refused = await cli('apply', '-f', file, '--dry-run');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /certificates\[0\]\.issuer: profile "shortlived" needs an ACME issuer/);
});
