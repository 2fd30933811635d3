/**
 * The SSH connector against real parts: a private sshd on loopback with a deploy user whose key is bound to the
 * forced command of docs/connectors.md (deploy/certfleet-ssh-forced-command.sh), nginx running as that user and
 * serving the uploaded files, and a real hub pushing to it through the same deploy pipeline agents use.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chown, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertificateVersion, Deployment } from '../../src/core/types.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { startNginxOnPlaceholder, type NginxHandle, servedFingerprint } from '../helpers/nginx.ts';
import { startTestSshd, type TestSshd } from '../helpers/sshd.ts';
import { createCertificate, eventually } from '../helpers/agent.ts';
import { startSilentServer } from '../helpers/tls-servers.ts';
import { checkStore } from '../../src/hub/store-check.ts';

const HUB_CONFIG = { connectors: { commandTimeoutSeconds: 30, verifyTimeoutSeconds: 10 } };

/** nginx as the deploy user, serving `<live>/fullchain.pem` + `key.pem` (a placeholder until the first deploy). */
async function nginxFor(t: Parameters<typeof startTestSshd>[0], sshd: TestSshd) {
  const live = await sshd.userDir('live');
  const include = join(sshd.dir, 'extra.conf'); // readable by the deploy user nginx runs as
  await writeFile(include, '', { mode: 0o644 });
  const nginx = await startNginxOnPlaceholder(t, live, {
    runAs: { uid: sshd.uid, gid: sshd.gid },
    extraServers: [`  include ${include};`],
  });
  const cmd = nginx.command;
  await sshd.writeForcedConfig({ allow: [live], configTest: `${cmd} -t`, reload: `${cmd} -s reload` });
  return { live, include, nginx, configTest: `${cmd} -t`, reload: `${cmd} -s reload` };
}

async function addSshEndpoint(
  hub: TestHub,
  name: string,
  ssh: { port: number; user: string; privateKeyPem: string; hostKeyFingerprint?: string },
  opts: { probe?: { port: number }; connectTimeoutSeconds?: number; stepTimeoutSeconds?: number } = {},
) {
  await hub.client.post('/api/v1/endpoints', {
    name,
    kind: 'connector',
    probeTargets: opts.probe ? [{ host: '127.0.0.1', port: opts.probe.port, sni: 'web.test' }] : [],
  });
  return hub.client.put<Record<string, unknown>>(`/api/v1/endpoints/${name}/connector`, {
    kind: 'ssh',
    host: '127.0.0.1',
    port: ssh.port,
    user: ssh.user,
    privateKey: ssh.privateKeyPem,
    ...(ssh.hostKeyFingerprint ? { hostKeyFingerprint: ssh.hostKeyFingerprint } : {}),
    ...(opts.connectTimeoutSeconds ? { connectTimeoutSeconds: opts.connectTimeoutSeconds } : {}),
    ...(opts.stepTimeoutSeconds ? { stepTimeoutSeconds: opts.stepTimeoutSeconds } : {}),
  });
}

async function subscribeNginx(
  hub: TestHub,
  endpoint: string,
  n: { live: string; nginx: NginxHandle; configTest: string; reload: string },
): Promise<string> {
  const sub = await hub.client.post<{ id: string }>('/api/v1/subscriptions', {
    endpoint,
    certificate: 'web',
    outputs: [
      { path: join(n.live, 'fullchain.pem'), format: 'fullchain', mode: '0644' },
      { path: join(n.live, 'key.pem'), format: 'key', mode: '0600' },
    ],
    configTest: n.configTest,
    reload: n.reload,
    verify: { host: '127.0.0.1', port: n.nginx.port, sni: 'web.test' },
  });
  return sub.id;
}

/** Subscribes `endpoint` to `web` with one fullchain output at `path`; resolves with the first version's final state. */
async function deployFullchain(
  hub: TestHub,
  endpoint: string,
  o: { path: string; configTest: string; reload: string },
  what: string,
): Promise<{ v1: CertificateVersion; d: Deployment }> {
  const sub = await hub.client.post<{ id: string }>('/api/v1/subscriptions', {
    endpoint,
    certificate: 'web',
    outputs: [{ path: o.path, format: 'fullchain', mode: '0644' }],
    configTest: o.configTest,
    reload: o.reload,
  });
  const v1 = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!;
  const d = await settled(hub, sub.id, v1.id, ['reloaded', 'verified', 'failed', 'rolled_back'], what);
  return { v1, d };
}

const deploymentOf = (hub: TestHub, subId: string, versionId: string): Promise<Deployment | undefined> =>
  hub.ctx.store.getDeployment(subId, versionId);

const settled = async (
  hub: TestHub,
  subId: string,
  versionId: string,
  states: string[],
  what: string,
): Promise<Deployment> =>
  eventually<Deployment | undefined>(
    async () => {
      const d = await deploymentOf(hub, subId, versionId);
      return d && states.includes(d.state) ? d : undefined;
    },
    60_000,
    what,
  ) as Promise<Deployment>;

describe('ssh connector + real sshd + real nginx', () => {
  test('renewal → files land over ssh in one session, nginx -t and reload run remotely, the probe sees it served → verified; a failing config test rolls back remotely in one session, old files byte-identical', async (t) => {
    const sshd = await startTestSshd(t);
    const n = await nginxFor(t, sshd);
    const hub = await startTestHub(t, { config: HUB_CONFIG });
    const view = await addSshEndpoint(hub, 'lb1', sshd, { probe: { port: n.nginx.port } });
    assert.equal(view.privateKey, undefined, 'the API never returns the private key');
    assert.deepEqual(view.secrets, ['privateKey']);
    await createCertificate(hub, 'web', ['web.test']);
    const subId = await subscribeNginx(hub, 'lb1', n);
    const certId = (await hub.ctx.store.getCertificate('web'))!.id;

    const v1 = (await hub.ctx.store.currentVersion(certId))!;
    await settled(hub, subId, v1.id, ['verified', 'failed', 'rolled_back'], 'v1 deployed');
    assert.equal((await deploymentOf(hub, subId, v1.id))!.state, 'verified');

    const sessionsBefore = sshd.sessions();
    const v2 = await hub.renewal.renewNow('web', 'test');
    const d2 = await settled(hub, subId, v2.id, ['verified', 'failed', 'rolled_back'], 'v2 deployed');
    assert.equal(d2.state, 'verified', JSON.stringify(d2));
    // read, put, config test and reload went over one forced-command session, and no staging directory is left.
    assert.equal(sshd.sessions() - sessionsBefore, 1, 'one ssh session for the whole deploy');
    assert.deepEqual((await readdir(n.live)).sort(), ['fullchain.pem', 'key.pem']);
    // The files are where the subscription says, with its modes, owned by the deploy user.
    const key = await stat(join(n.live, 'key.pem'));
    assert.equal(key.mode & 0o777, 0o600);
    assert.equal(key.uid, sshd.uid);
    assert.equal((await stat(join(n.live, 'fullchain.pem'))).mode & 0o777, 0o644);
    assert.equal(await readFile(join(n.live, 'fullchain.pem'), 'utf8'), v2.certPem + v2.chainPem);
    // The hub's own probe sees the new certificate served.
    const probed = await hub.verification.probes.probeEndpoint('lb1');
    assert.equal(probed.results[0].fingerprint, v2.fingerprint);
    assert.equal(await servedFingerprint(n.nginx.port, 'web.test'), v2.fingerprint);
    // Every step is an event, by the connector.
    const events = await hub.ctx.store.listEvents({ limit: 1000 });
    const mine = events.filter((e) => e.actor === 'connector:lb1' && e.data.version_id === v2.id);
    const kinds = events.filter((e) => e.actor === 'connector:lb1').map((e) => e.kind);
    for (const k of [
      'deployment.delivered',
      'deployment.installed',
      'deployment.reloaded',
      'deployment.verified',
    ])
      assert.ok(kinds.includes(k), `${k} recorded (mine: ${mine.length})`);
    // The connector endpoint shows contact, like an agent.
    assert.ok(await hub.ctx.store.lastSeen((await hub.ctx.store.getEndpoint('lb1'))!.id));

    // Someone breaks the nginx configuration: the next version must not take the server down.
    const before = await Promise.all(['fullchain.pem', 'key.pem'].map((f) => readFile(join(n.live, f))));
    await writeFile(n.include, 'this is not nginx syntax;\n');
    const sessionsBeforeV3 = sshd.sessions();
    const v3 = await hub.renewal.renewNow('web', 'test');
    const d3 = await settled(hub, subId, v3.id, ['verified', 'failed', 'rolled_back'], 'v3 deployed');
    assert.equal(d3.state, 'rolled_back', JSON.stringify(d3));
    assert.equal(sshd.sessions() - sessionsBeforeV3, 1, 'the rollback went over the same session');
    assert.deepEqual((await readdir(n.live)).sort(), ['fullchain.pem', 'key.pem']);
    assert.equal(d3.reason, 'config_test');
    assert.match(String(d3.detail?.stderrTail), /this is not nginx syntax|unknown directive/);
    const after = await Promise.all(['fullchain.pem', 'key.pem'].map((f) => readFile(join(n.live, f))));
    assert.ok(before[0].equals(after[0]) && before[1].equals(after[1]), 'old files byte-identical');
    assert.equal((await stat(join(n.live, 'key.pem'))).mode & 0o777, 0o600);
    assert.equal(await servedFingerprint(n.nginx.port, 'web.test'), v2.fingerprint);
    // No secret in the hub's log; the key and the records (old keys) are sealed, and check-store opens them.
    const log = hub.logs.join('');
    assert.ok(!log.includes('PRIVATE KEY'), 'no private key in the hub log');
    const meta = await hub.ctx.store.listMeta();
    assert.ok(!meta.some((m) => m.value.includes('PRIVATE KEY')), 'no private key in clear in meta');
    const report = await checkStore(hub.ctx.store, hub.ctx.sealer);
    assert.deepEqual(
      report.rows
        .filter((r) => r.key.startsWith('connector.'))
        .map((r) => [r.ok, r.detail])
        .sort(),
      [
        [true, '1 deploy record(s) unseal'],
        [true, 'ssh connector: 1 secret(s) unseal'],
      ],
    );
  });

  test('a host key other than the pinned one is a clear error naming the fingerprint seen, and nothing is written', async (t) => {
    const sshd = await startTestSshd(t);
    const n = await nginxFor(t, sshd);
    const before = await readFile(join(n.live, 'key.pem'));
    const hub = await startTestHub(t, { config: HUB_CONFIG });
    const wrong = `SHA256:${'A'.repeat(43)}`;
    await addSshEndpoint(hub, 'lb1', { ...sshd, hostKeyFingerprint: wrong });
    await createCertificate(hub, 'web', ['web.test']);
    const subId = await subscribeNginx(hub, 'lb1', n);
    const v1 = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!;
    const d = await settled(hub, subId, v1.id, ['verified', 'failed', 'rolled_back'], 'v1 attempted');
    assert.equal(d.state, 'failed');
    assert.equal(d.detail?.code, 'HOST_KEY_UNTRUSTED');
    assert.ok(String(d.detail?.message).includes(sshd.hostKeyFingerprint), 'names the fingerprint seen');
    assert.ok(String(d.detail?.message).includes(wrong), 'names the pinned one');
    assert.match(String(d.detail?.hint), /certfleet endpoint trust-host-key lb1 --fingerprint SHA256:/);
    assert.ok(before.equals(await readFile(join(n.live, 'key.pem'))), 'nothing written');
  });

  test('a host that accepts TCP and never answers fails only its own endpoint after its timeout; another endpoint still deploys', async (t) => {
    const hung = await startSilentServer();
    onCleanup(t, () => hung.close());
    const hungPort = hung.port;

    const sshd = await startTestSshd(t);
    const n = await nginxFor(t, sshd);
    // One connector slot: the healthy endpoint must still get its turn after the hung one's timeout.
    const hub = await startTestHub(t, {
      config: { connectors: { ...HUB_CONFIG.connectors, concurrency: 1 } },
    });
    await addSshEndpoint(
      hub,
      'dead',
      {
        port: hungPort,
        user: sshd.user,
        privateKeyPem: sshd.privateKeyPem,
        hostKeyFingerprint: sshd.hostKeyFingerprint,
      },
      { connectTimeoutSeconds: 1 },
    );
    await addSshEndpoint(hub, 'lb1', sshd);
    await createCertificate(hub, 'web', ['web.test']);
    const deadSub = await subscribeNginx(hub, 'dead', n);
    const liveSub = await subscribeNginx(hub, 'lb1', n);
    const v1 = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!;
    const dead = await settled(hub, deadSub, v1.id, ['verified', 'failed', 'rolled_back'], 'dead attempted');
    const live = await settled(hub, liveSub, v1.id, ['verified', 'failed', 'rolled_back'], 'lb1 deployed');
    assert.equal(dead.state, 'failed');
    assert.equal(dead.detail?.code, 'UNREACHABLE');
    assert.match(String(dead.detail?.message), /did not complete the SSH handshake within 1000 ms/);
    assert.equal(live.state, 'verified', JSON.stringify(live));
  });

  test('a host whose forced command predates sessions still gets the deploy, one session per request', async (t) => {
    const sshd = await startTestSshd(t);
    // An older script refuses the word `session` exactly like this, before reading anything.
    const older = join(sshd.dir, 'older-forced-command.sh');
    await writeFile(
      older,
      [
        '#!/bin/sh',
        'case ${SSH_ORIGINAL_COMMAND:-} in session*)',
        '  echo "certfleet-forced-command: unknown request: session" >&2',
        '  exit 64 ;;',
        'esac',
        `exec /bin/sh ${join(sshd.dir, 'certfleet-ssh-forced-command.sh')} "$@"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const key = await sshd.addForcedKey({ command: older });
    const live = await sshd.userDir('older');
    const configTest = `test -s ${live}/fullchain.pem`;
    const reload = `touch ${live}/reloaded`;
    await key.writeForcedConfig({ allow: [live], configTest, reload });
    const hub = await startTestHub(t, { config: HUB_CONFIG });
    await addSshEndpoint(hub, 'old1', { ...sshd, privateKeyPem: key.privateKeyPem });
    await createCertificate(hub, 'web', ['web.test']);
    const sessionsBefore = sshd.sessions();
    const { v1, d } = await deployFullchain(
      hub,
      'old1',
      { path: join(live, 'fullchain.pem'), configTest, reload },
      'deployed',
    );
    assert.equal(d.state, 'reloaded', JSON.stringify(d));
    assert.equal(await readFile(join(live, 'fullchain.pem'), 'utf8'), v1.certPem + v1.chainPem);
    await stat(join(live, 'reloaded'));
    // The refused `session`, then read, put, config test and reload one session each.
    assert.equal(sshd.sessions() - sessionsBefore, 5);
  });

  test('a config test that outlives its timeout is ended on the host and the deploy rolls back over the same session', async (t) => {
    const sshd = await startTestSshd(t);
    const live = await sshd.userDir('slow');
    const path = join(live, 'fullchain.pem');
    await writeFile(path, 'old\n', { mode: 0o644 });
    await chown(path, sshd.uid, sshd.gid); // the deploy user's file, as the deploy left it
    const configTest = `sleep 30; test -s ${path}`;
    const reload = `touch ${live}/reloaded`;
    await sshd.writeForcedConfig({ allow: [live], configTest, reload });
    const hub = await startTestHub(t, {
      config: { connectors: { ...HUB_CONFIG.connectors, commandTimeoutSeconds: 1 } },
    });
    await addSshEndpoint(hub, 'slow1', sshd);
    await createCertificate(hub, 'web', ['web.test']);
    const sessionsBefore = sshd.sessions();
    const { d } = await deployFullchain(hub, 'slow1', { path, configTest, reload }, 'attempted');
    assert.equal(d.state, 'rolled_back', JSON.stringify(d));
    assert.equal(d.reason, 'config_test');
    assert.equal(d.detail?.timedOut, true, JSON.stringify(d.detail));
    assert.equal(await readFile(path, 'utf8'), 'old\n', 'the old file is back');
    assert.deepEqual(await readdir(live), ['fullchain.pem'], 'not reloaded, nothing staged left');
    assert.equal(sshd.sessions() - sessionsBefore, 1);
  });
});
