/**
 * The deploy pipeline against a real nginx on loopback: new version served and verified; a config test, reload
 * or verify that fails puts the old files back byte for byte and nginx keeps (or goes back to) serving the old
 * certificate.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planDeploy } from '../../src/agent/dry-run-target.ts';
import { deployLocally as deploy } from '../../src/agent/local-target.ts';
import type { DeployRequest } from '../../src/deploy/deploy-contract.ts';
import type { Bundle } from '../../src/core/types.ts';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { onCleanup, suiteCleanup } from '../helpers/cleanup.ts';
import { NGINX_BIN, startNginx, type NginxHandle } from '../helpers/nginx.ts';
import { makeTestPki } from '../helpers/test-pki.ts';
import { NAMES, fullchainOf, recorder, requestFor, servedFingerprint, subscriptionOf } from './helpers.ts';

let root: string;
let live: string; // the output directory nginx reads
let stateDir: string;
let nginx: NginxHandle;
let includePath: string;
let v1: Bundle;
let counter = 0;
const pkis: Bundle[] = [];

const atEnd = suiteCleanup();
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'certfleet-deploy-nginx-'));
  atEnd(() => rm(root, { recursive: true, force: true }));
  live = join(root, 'live');
  stateDir = join(root, 'state');
  await mkdir(live);
  includePath = join(root, 'extra.conf');
  await writeFile(includePath, '');
  const made = await Promise.all(
    Array.from({ length: 7 }, () => 0).map(() => makeTestPki('ecdsa-p256', { dnsNames: NAMES })),
  );
  pkis.push(...made.map((m) => m.bundle));
  v1 = pkis.shift()!;
  await writeFile(join(live, 'fullchain.pem'), fullchainOf(v1));
  await writeFile(join(live, 'key.pem'), v1.keyPem, { mode: 0o600 });
  nginx = await startNginx({
    certPath: join(live, 'fullchain.pem'),
    keyPath: join(live, 'key.pem'),
    extraServers: [`  include ${includePath};`],
  });
  atEnd(() => nginx.stop());
});

const nginxArgs = () => nginx.command;

function request(bundle: Bundle, sub: Partial<DeployRequest['subscription']> = {}): DeployRequest {
  return requestFor(
    bundle,
    subscriptionOf({
      outputs: [
        { path: join(live, 'fullchain.pem'), format: 'fullchain' },
        { path: join(live, 'key.pem'), format: 'key' },
      ],
      configTest: `${nginxArgs()} -t`,
      reload: `${nginxArgs()} -s reload`,
      verify: { host: '127.0.0.1', port: nginx.port, sni: NAMES[0] },
      ...sub,
    }),
  );
}

async function liveFiles(): Promise<{ fullchain: Buffer; key: Buffer }> {
  return {
    fullchain: await readFile(join(live, 'fullchain.pem')),
    key: await readFile(join(live, 'key.pem')),
  };
}

async function currentlyServed(): Promise<string> {
  return servedFingerprint(nginx.port);
}

describe('deploy to a real nginx', () => {
  test('a new version is written, nginx reloads, serves it, and it is reported verified', async (t) => {
    const next = pkis.shift()!;
    const hookOut = join(root, `hook-${counter++}.txt`);
    const rec = recorder();
    const started = Date.now();
    const out = await deploy(
      request(next, {
        // an unchanged certbot deploy hook chained before the reload
        reload: `echo "$RENEWED_LINEAGE $RENEWED_DOMAINS" > ${hookOut} && ${nginxArgs()} -s reload`,
      }),
      rec.report,
      { stateDir },
    );
    t.diagnostic(`deploy → verified in ${Date.now() - started} ms`);
    assert.deepEqual(out, { state: 'verified' });
    assert.deepEqual(rec.states(), ['installed', 'reloaded', 'verified']);
    // Right after a reload old workers may still take a connection for a moment; a waited reload settles it.
    await nginx.reload();
    assert.equal(await currentlyServed(), fingerprintOf(next.certPem));
    assert.equal(rec.reports[2].detail?.servedFingerprint, fingerprintOf(next.certPem));
    assert.equal(await readFile(hookOut, 'utf8'), `${live} ${NAMES.join(' ')}\n`);
    assert.equal((await stat(join(live, 'key.pem'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(live, 'fullchain.pem'))).mode & 0o777, 0o644);
    // Calling again for the live version (a resync) only confirms it: no report, no reload.
    const again = recorder();
    assert.deepEqual(await deploy(request(next), again.report, { stateDir }), { state: 'verified' });
    assert.deepEqual(again.states(), []);
  });

  test('a config test that fails restores the files byte for byte; nginx keeps serving the old cert', async (t) => {
    const before = await liveFiles();
    const servedBefore = await currentlyServed();
    await writeFile(includePath, 'this_is_not_a_directive on;\n');
    onCleanup(t, () => writeFile(includePath, ''));
    const rec = recorder();
    const out = await deploy(request(pkis.shift()!), rec.report, { stateDir });
    assert.equal(out.state, 'rolled_back');
    assert.deepEqual(rec.states(), ['installed', 'rolled_back']);
    const d = rec.reports[1];
    assert.equal(d.reason, 'config_test');
    assert.equal(d.detail?.step, 'config_test');
    assert.equal(d.detail?.exitCode, 1);
    assert.match(String(d.detail?.stderrTail), /unknown directive "this_is_not_a_directive"/);
    assert.deepEqual(await liveFiles(), before);
    assert.equal(await currentlyServed(), servedBefore);
  });

  test('a failing reload rolls back, reloads again, and reports step reload', async () => {
    const before = await liveFiles();
    const servedBefore = await currentlyServed();
    const flag = join(root, `fail-once-${counter++}`);
    const reloads = join(root, `reloads-${counter++}`);
    await writeFile(flag, '');
    const rec = recorder();
    const out = await deploy(
      request(pkis.shift()!, {
        reload: `echo x >> ${reloads}; if [ -e ${flag} ]; then rm ${flag}; echo "reload: service is masked" >&2; exit 3; fi; ${nginxArgs()} -s reload`,
      }),
      rec.report,
      { stateDir },
    );
    assert.equal(out.state, 'rolled_back');
    assert.deepEqual(rec.states(), ['installed', 'rolled_back']);
    assert.equal(rec.reports[1].detail?.step, 'reload');
    assert.equal(rec.reports[1].detail?.exitCode, 3);
    assert.match(String(rec.reports[1].detail?.stderrTail), /service is masked/);
    assert.equal((await readFile(reloads, 'utf8')).length, 4, 'the reload ran again after restoring');
    assert.deepEqual(await liveFiles(), before);
    await nginx.reload();
    assert.equal(await currentlyServed(), servedBefore);
  });

  test('verify seeing another certificate rolls back and reloads nginx to the old one', async (t) => {
    const before = await liveFiles();
    const servedBefore = await currentlyServed();
    const impostor = pkis.shift()!;
    const server: Server = createServer({ cert: fullchainOf(impostor), key: impostor.keyPem });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onCleanup(t, () => new Promise<void>((r) => server.close(() => r())));
    const reloads = join(root, `reloads-${counter++}`);
    const rec = recorder();
    const started = Date.now();
    const out = await deploy(
      request(pkis.shift()!, {
        reload: `echo x >> ${reloads}; ${nginxArgs()} -s reload`,
        verify: { host: '127.0.0.1', port: (server.address() as AddressInfo).port, sni: NAMES[0] },
      }),
      rec.report,
      { stateDir, verifyTimeoutMs: 1000 },
    );
    t.diagnostic(`verify gave up and rolled back in ${Date.now() - started} ms`);
    assert.equal(out.state, 'rolled_back');
    assert.deepEqual(rec.states(), ['installed', 'reloaded', 'rolled_back']);
    const d = rec.reports[2].detail!;
    assert.equal(d.step, 'verify');
    assert.equal(d.servedFingerprint, fingerprintOf(impostor.certPem));
    assert.match(String(d.message), /not the deployed/);
    assert.equal(
      (await readFile(reloads, 'utf8')).length,
      4,
      'reloaded, then reloaded again after restoring',
    );
    assert.deepEqual(await liveFiles(), before);
    // `nginx -s reload` returns before new workers serve, so a probe right now may still see either
    // generation. Let one more reload (which waits for its workers) settle it: the restored files serve the old cert.
    await nginx.reload();
    assert.equal(await currentlyServed(), servedBefore);
  });

  test('a dry run renders into a temp dir, runs nginx -t on a copy of the config there, touches nothing', async () => {
    const before = await liveFiles();
    const beforeStat = await stat(join(live, 'key.pem'));
    const servedBefore = await currentlyServed();
    const next = pkis[0];
    // Documented pattern: point a copy of the server config at $CERTFLEET_OUTPUT_DIR and test that.
    const configTest =
      `sed "s#${live}#$CERTFLEET_OUTPUT_DIR#g" ${nginx.confPath} > "$CERTFLEET_OUTPUT_DIR/nginx.conf" && ` +
      `${NGINX_BIN} -p ${nginx.dir} -e ${join(nginx.dir, 'logs', 'error.log')} -c "$CERTFLEET_OUTPUT_DIR/nginx.conf" -t && ` +
      `test "$CERTFLEET_DRY_RUN" = 1`;
    const out = await planDeploy(request(next, { configTest }), { stateDir });
    assert.equal(out.state, 'pending');
    assert.equal(out.dryRun?.ok, true, JSON.stringify(out.dryRun?.configTest));
    assert.match(out.dryRun!.configTest!.stderrTail, /syntax is ok/);
    assert.deepEqual(
      out.dryRun!.outputs.map((o) => [o.path, o.format, o.mode, o.wouldWrite]),
      [
        [join(live, 'fullchain.pem'), 'fullchain', '0644', true],
        [join(live, 'key.pem'), 'key', '0600', true],
      ],
    );
    assert.deepEqual(out.dryRun!.reload, { command: `${nginxArgs()} -s reload`, at: 'now' });
    assert.deepEqual(await liveFiles(), before);
    assert.equal((await stat(join(live, 'key.pem'))).ino, beforeStat.ino);
    assert.equal(await currentlyServed(), servedBefore);
    await assert.rejects(stat(out.dryRun!.outputDir!), { code: 'ENOENT' }, 'the temp dir is removed');

    // The same dry run with a broken config says so, and still touches nothing.
    await writeFile(includePath, 'this_is_not_a_directive on;\n');
    try {
      const bad = await planDeploy(request(next, { configTest }), { stateDir });
      assert.equal(bad.state, 'failed');
      assert.equal(bad.dryRun?.ok, false);
      assert.match(bad.dryRun!.configTest!.stderrTail, /unknown directive/);
    } finally {
      await writeFile(includePath, '');
    }
    assert.deepEqual(await liveFiles(), before);
  });
});
