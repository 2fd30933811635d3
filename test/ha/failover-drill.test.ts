/**
 * Failure drills with real parts: two `certfleet hub` processes on one private PostgreSQL cluster, Pebble as the CA,
 * and a round-robin TCP balancer in front of the hubs' http-01 listeners (where Pebble validates), as a load
 * balancer would sit in front of the hubs. Counted at the CA: every certificate Pebble issued is a version in the
 * store, so no renewal was finalized twice, even with the leader killed (-9) while its order was being validated.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { stringify } from 'yaml';
import { pebbleCaFile, pebbleIssuer, randomName } from '../helpers/acme-hub.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { runCli, startHubProcess, type HubProcess } from '../helpers/cli.ts';
import { freePort, startPebble } from '../helpers/pebble.ts';
import { postgresBinDir, sharedPostgres } from '../helpers/postgres.ts';
import { startTcpBalancer } from '../helpers/tcp-balancer.ts';
import { tempDir } from '../helpers/tmp.ts';

const postgres = sharedPostgres();

function healthz(hub: HubProcess): Promise<{ leader: boolean } | undefined> {
  const ca = readFileSync(join(hub.dataDir, 'ca.pem'), 'utf8');
  return new Promise((resolve) => {
    const req = request(`${hub.url}/healthz`, { ca, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? JSON.parse(body) : undefined));
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const normalSerial = (s: string) => s.toLowerCase().replace(/^0+/, '');

test('two hubs on PostgreSQL with Pebble: both answer http-01, a killed leader is replaced without double issuance, a PostgreSQL restart loses nothing', async (t) => {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const cluster = await postgres.cluster();
  const url = await cluster.createDatabase();
  const caFile = await pebbleCaFile(t, pebble);
  const http01Ports = [await freePort(), await freePort()];
  const balancer = await startTcpBalancer(pebble.httpPort, http01Ports);
  onCleanup(t, () => balancer.close());
  const dir = await tempDir(t);
  const token = `cfa_test_${randomBytes(16).toString('hex')}`;
  const env = {
    CERTFLEET_MASTER_KEY: randomBytes(32).toString('hex'),
    CERTFLEET_ADMIN_TOKEN: token,
    CERTFLEET_LOG_LEVEL: 'info',
  };
  const hubs: HubProcess[] = [];
  for (const [i, port] of http01Ports.entries()) {
    const config = join(dir, `hub${i}.yaml`);
    await writeFile(
      config,
      stringify({
        issuers: [pebbleIssuer(pebble, caFile)],
        http01: { listen: `127.0.0.1:${port}` },
        planner: { intervalSeconds: 3600 },
      }),
    );
    hubs.push(
      await startHubProcess(
        t,
        { ...env, CERTFLEET_HUB_CONFIG: config },
        { dataDir: join(dir, `data${i}`), args: ['--database-url', url] },
      ),
    );
  }
  const cli = (hub: HubProcess, args: string[]) => runCli(args, { ...hub.env, CERTFLEET_TOKEN: token });

  // 1. Certificates issued through either hub: Pebble's http-01 requests reach both, and both answer.
  const names = ['site-a', 'site-b', 'site-c', 'site-d'];
  for (const [i, name] of names.entries()) {
    const add = await cli(hubs[i % 2], [
      'cert',
      'add',
      name,
      '--issuer',
      'pebble',
      '--san',
      randomName(`${name}-`),
    ]);
    assert.equal(add.code, 0, add.stderr);
  }
  assert.ok(
    balancer.state.served.every((n) => n > 0),
    `both hubs answered the CA: ${balancer.state.served.join(' / ')}`,
  );

  // 2. kill -9 the leader while its order is being validated (a new name: Pebble reuses valid authorizations, so
  //    only a name it has not validated yet makes it call the http-01 responders).
  const states = await Promise.all(hubs.map(healthz));
  assert.equal(states.filter((s) => s?.leader).length, 1, 'exactly one leader');
  const leader = hubs[states.findIndex((s) => s?.leader)];
  const survivor = hubs.find((h) => h !== leader)!;
  const san = randomName('site-e-');
  balancer.state.delayMs = 1500;
  const interrupted = cli(leader, ['cert', 'add', 'site-e', '--issuer', 'pebble', '--san', san]);
  await until('the order in flight', () => balancer.state.held > 0);
  leader.process.kill('SIGKILL');
  const killedAt = Date.now();
  balancer.state.delayMs = 0;
  // the bound: the lease is tried every 2 s, so 10 s is generous even on a busy machine
  await until('the survivor to lead', async () => (await healthz(survivor))?.leader, 10_000);
  const takeoverMs = Date.now() - killedAt;
  t.diagnostic(`takeover after kill -9: ${takeoverMs} ms`);
  assert.notEqual((await interrupted).code, 0, 'the client of the killed hub saw its request fail');
  // the killed hub's order is left to Pebble (it validates it through the survivor, then it expires unfinalized)
  await until('the held validation to be passed on', () => balancer.state.held === 0);
  await new Promise((r) => setTimeout(r, 1000));
  // as that client retries, at the survivor; and a renewal there
  // (a fresh name: the authorization of the killed order may have failed on the way)
  const retried = await cli(survivor, [
    'cert',
    'add',
    'site-e',
    '--issuer',
    'pebble',
    '--san',
    randomName('site-e-'),
  ]);
  assert.equal(retried.code, 0, `${retried.stderr}\nbalancer: ${balancer.events.slice(-9).join('; ')}`);
  const renewed = await cli(survivor, ['renew', 'site-a']);
  assert.equal(renewed.code, 0, renewed.stderr);
  assert.match(survivor.output(), /this hub now leads/);
  names.push('site-e');

  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const versions = async () =>
    (
      await db.query<{ name: string; serial: string; current: boolean }>(
        `select c.name, v.serial, c.current_version_id = v.id as current
           from versions v join certificates c on c.id = v.certificate_id`,
      )
    ).rows;
  const stored = await versions();
  assert.deepEqual(
    stored.map((v) => normalSerial(v.serial)).sort(),
    pebble.issuedSerials().map(normalSerial).sort(),
    'every certificate Pebble issued is a stored version: no order was finalized twice',
  );
  assert.equal(
    stored.filter((v) => v.name === 'site-a').length,
    2,
    'site-a: its first version and one renewal',
  );
  for (const name of names)
    assert.equal(
      stored.filter((v) => v.name === name && v.current).length,
      1,
      `${name}: one current version`,
    );

  await db.end(); // the restart below ends every session, this one too

  // 3. PostgreSQL restarted under load: the hub reconnects, nothing acknowledged is lost, the log says what happened.
  const created: string[] = [];
  const refused: string[] = [];
  let stop = false;
  const load = (async () => {
    for (let i = 0; !stop; i++) {
      const r = await cli(survivor, ['endpoint', 'add', `load-${i}`]);
      if (r.code === 0) created.push(`load-${i}`);
      else refused.push(r.stderr);
    }
  })();
  await until('some load', () => created.length >= 3);
  const data = join(cluster.dir, 'data');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      'runuser',
      ['-u', 'postgres', '--', join(postgresBinDir(), 'pg_ctl'), '-D', data, 'restart', '-m', 'fast', '-w'],
      {
        stdio: 'ignore',
      },
    );
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pg_ctl restart exited ${code}`))));
  });
  const restartedAt = Date.now();
  const before = created.length;
  await until('writes after the restart', () => created.length >= before + 3);
  t.diagnostic(`first acknowledged write after the restart: ${Date.now() - restartedAt} ms or less`);
  stop = true;
  await load;
  await until('the survivor to lead again', async () => (await healthz(survivor))?.leader);
  const db2 = new pg.Client({ connectionString: url });
  await db2.connect();
  onCleanup(t, () => db2.end());
  const endpoints = new Set(
    (await db2.query<{ name: string }>('select name from endpoints')).rows.map((r) => r.name),
  );
  assert.deepEqual(
    created.filter((n) => !endpoints.has(n)),
    [],
    'every acknowledged write is stored',
  );
  t.diagnostic(`writes refused during the restart: ${refused.length}`);
  for (const stderr of refused)
    assert.match(
      stderr,
      /cannot reach its database right now/,
      'a refused write says why, not "internal error"',
    );
  const log = survivor.output();
  assert.match(log, /leader lease: lost the database connection/);
  assert.match(log, /event relay: lost the database connection/);
  assert.match(log, /event relay: listening again; resynced/);
  const after = await cli(survivor, ['renew', 'site-b']);
  assert.equal(after.code, 0, after.stderr);
});
