/**
 * The restore drill of docs/backup.md, for real: a hub with an ACME (Pebble) and an internal-CA certificate and two
 * enrolled agents (one deploying to a real nginx) → `certfleet backup create` (the real binary) → the hub stopped
 * and its data directory destroyed → `certfleet backup restore` into a new directory → a hub on another port from
 * it → the agents, pointed at the new URL with their enrollment and pinned CA unchanged, reconnect and receive the
 * next renewal of both certificates; nginx serves the new one; the audit log and the ACME account came back.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { AgentRunner } from '../../src/agent/run-agent.ts';
import { HubClient } from '../../src/cli/client.ts';
import { createLogger } from '../../src/core/log.ts';
import { SealedAccountStore } from '../../src/hub/acme/sealed-account-store.ts';
import { hubConfigSchema, loadHubConfig } from '../../src/hub/hub-config.ts';
import { startHub } from '../../src/hub/hub.ts';
import { fingerprintOf } from '../../src/pki/inspect.ts';
import { pebbleHubConfig, randomName, startAcmeHub } from '../helpers/acme-hub.ts';
import { enrollTestAgent, eventually, subscribe } from '../helpers/agent.ts';
import { ageIdentity } from '../helpers/age.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { runCli } from '../helpers/cli.ts';
import { startNginxOnPlaceholder, servedFingerprint } from '../helpers/nginx.ts';
import { startPebble } from '../helpers/pebble.ts';
import { tempDir } from '../helpers/tmp.ts';

test('restore drill: backup → hub and data destroyed → restore on another port → agents keep working', async (t) => {
  const pebble = await startPebble();
  onCleanup(t, () => pebble.stop());
  const config = await pebbleHubConfig(t, pebble);
  const work = await tempDir(t, 'certfleet-drill-');
  const hubConfigFile = join(work, 'hub.yaml');
  await writeFile(hubConfigFile, stringify({ planner: { enabled: false }, ...config }));
  const hubA = await startAcmeHub(t, config);

  // nginx serves the ACME certificate through agent web1; agent api1 gets the internal-CA one as files.
  const webName = randomName('web-');
  const live = join(work, 'live');
  await mkdir(live);
  const nginx = await startNginxOnPlaceholder(t, live, { dnsName: webName });
  const nginxCmd = nginx.command;
  const apiOut = join(work, 'api');
  await mkdir(apiOut);

  await hubA.client.post('/api/v1/certificates', { name: 'web', sans: [webName], issuer: 'pebble' });
  await hubA.client.post('/api/v1/certificates', { name: 'api', sans: ['api.internal.test'] });
  const web1 = await enrollTestAgent(t, hubA, 'web1');
  const api1 = await enrollTestAgent(t, hubA, 'api1');
  const webSub = await subscribe(hubA, 'web1', 'web', {
    outputs: [
      { path: join(live, 'fullchain.pem'), format: 'fullchain', mode: '0644' },
      { path: join(live, 'key.pem'), format: 'key', mode: '0600' },
    ],
    configTest: `${nginxCmd} -t`,
    reload: `${nginxCmd} -s reload`,
    verify: { host: '127.0.0.1', port: nginx.port, sni: webName },
  });
  const apiSub = await subscribe(hubA, 'api1', 'api', {
    outputs: [{ path: join(apiOut, 'cert.pem'), format: 'cert', mode: '0644' }],
  });
  const silent = createLogger({ level: 'silent' });
  const runAgent = async (stateDir: string) => {
    const runner = new AgentRunner({ stateDir, logger: silent, backoffMinMs: 50, backoffMaxMs: 500 });
    await runner.start();
    onCleanup(t, () => runner.stop());
    return runner;
  };
  const deployed = async (
    hub: { ctx: { store: typeof hubA.ctx.store } },
    subId: string,
    versionId: string,
    states: string[],
  ) => states.includes((await hub.ctx.store.getDeployment(subId, versionId))?.state ?? '');
  const current = async (hub: typeof hubA, name: string) => {
    const cert = (await hub.ctx.store.getCertificate(name))!;
    return (await hub.ctx.store.currentVersion(cert.id))!;
  };

  const runnersA = [await runAgent(web1.stateDir), await runAgent(api1.stateDir)];
  const web1v1 = await current(hubA, 'web');
  const api1v1 = await current(hubA, 'api');
  await eventually(() => deployed(hubA, webSub, web1v1.id, ['verified']), 30_000, 'web v1 verified');
  await eventually(
    () => deployed(hubA, apiSub, api1v1.id, ['installed', 'reloaded', 'verified']),
    30_000,
    'api v1',
  );
  assert.equal(await servedFingerprint(nginx.port, webName), web1v1.fingerprint);
  const accountBefore = await new SealedAccountStore(hubA.ctx.store, hubA.ctx.sealer).load(
    pebble.directoryUrl,
  );
  assert.ok(accountBefore?.accountUrl);

  // 1. Back up the running hub with the real binary.
  const key = await ageIdentity(work);
  const backupFile = join(work, 'drill.age');
  const created = await runCli([
    'backup',
    'create',
    '--data-dir',
    hubA.dataDir,
    '--hub-config',
    hubConfigFile,
    '--out',
    backupFile,
    '--recipient',
    key.recipient,
  ]);
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /2 certificates, 2 versions, 1 ACME accounts/);
  const eventsAtBackup = await hubA.ctx.store.listEvents({ limit: 10_000 });
  assert.ok(eventsAtBackup.length > 10, `the audit log has history (${eventsAtBackup.length} events)`);

  // 2. Disaster: the hub stops, its data directory is gone; agents lose their hub.
  const urlA = hubA.url;
  const caFingerprint = hubA.caFingerprint;
  for (const r of runnersA) await r.stop();
  await hubA.close();
  await rm(hubA.dataDir, { recursive: true, force: true });

  // 3. Restore into a new directory, start a hub from it on another port, with the restored hub config.
  const restored = join(work, 'restored-data');
  const r = await runCli(['backup', 'restore', backupFile, '--data-dir', restored, '--identity', key.file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const logs: string[] = [];
  const hubB = await startHub({
    dataDir: restored,
    listen: '127.0.0.1:0',
    config: hubConfigSchema.parse(await loadHubConfig(join(restored, 'hub.yaml'))),
    logger: createLogger({
      level: 'info',
      destination: new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }),
    }),
    env: { ...process.env },
  });
  onCleanup(t, () => hubB.close());
  assert.notEqual(hubB.url, urlA, 'another port');
  assert.equal(hubB.caFingerprint, caFingerprint, 'the same internal CA: agents keep their pin');
  assert.equal(hubB.adminToken, undefined, 'no new admin token: the old one came back');
  const admin = new HubClient({ hub: hubB.url, token: hubA.token, caPem: hubB.caPem });
  assert.deepEqual(
    (await admin.get<Array<{ name: string }>>('/api/v1/certificates')).map((c) => c.name).sort(),
    ['api', 'web'],
  );

  // The audit log is intact: every event up to the backup, unchanged.
  const eventsB = await hubB.ctx.store.listEvents({ limit: 10_000 });
  const byId = new Map(eventsB.map((e) => [e.id, e]));
  assert.deepEqual(
    eventsAtBackup.map((e) => byId.get(e.id)),
    eventsAtBackup,
  );

  // 4. Agents: only the hub URL changes in agent.json (the documented step); same keys, same pinned CA.
  for (const stateDir of [web1.stateDir, api1.stateDir]) {
    const path = join(stateDir, 'agent.json');
    const agentConfig = JSON.parse(await readFile(path, 'utf8')) as { hub: string; caFingerprint: string };
    assert.equal(agentConfig.hub, urlA);
    assert.equal(agentConfig.caFingerprint, caFingerprint);
    await writeFile(path, JSON.stringify({ ...agentConfig, hub: hubB.url }, null, 2));
  }
  const reconnectedAfter = Date.now();
  await runAgent(web1.stateDir);
  await runAgent(api1.stateDir);
  await eventually(
    async () => {
      const rows = (await hubB.ctx.store.endpointRows()).items;
      return ['web1', 'api1'].every((n) => {
        const seen = rows.find((row) => row.endpoint.name === n)?.lastSeenAt;
        return seen !== undefined && Date.parse(seen) >= reconnectedAfter - 1000;
      });
    },
    30_000,
    'both agents checked in with the restored hub',
  );

  // 5. The next renewal of both certificates reaches them: the ACME one with the restored account.
  const webV2 = await hubB.renewal.renewNow('web', 'test');
  const apiV2 = await hubB.renewal.renewNow('api', 'test');
  await eventually(() => deployed(hubB, webSub, webV2.id, ['verified']), 60_000, 'web v2 verified on nginx');
  await eventually(
    () => deployed(hubB, apiSub, apiV2.id, ['installed', 'reloaded', 'verified']),
    60_000,
    'api v2',
  );
  assert.equal(await servedFingerprint(nginx.port, webName), webV2.fingerprint);
  assert.equal(fingerprintOf(await readFile(join(apiOut, 'cert.pem'), 'utf8')), apiV2.fingerprint);
  const accountAfter = await new SealedAccountStore(hubB.ctx.store, hubB.ctx.sealer).load(
    pebble.directoryUrl,
  );
  assert.equal(
    accountAfter?.accountUrl,
    accountBefore.accountUrl,
    'no new ACME account: the restored one was used',
  );
  assert.ok(
    !logs.join('').includes(accountBefore.accountKeyPem.split('\n')[1]),
    'no key material in the logs',
  );
});
