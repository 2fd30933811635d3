/**
 * Real nginx serving a hub-issued certificate: the probe verifies the deployment; a "successful" reload that
 * left nginx on the old certificate becomes `diverged` after the grace period, and the diverged alert reaches a
 * real webhook receiver (HMAC checked) and a real SMTP receiver; fixing nginx verifies and resolves. /metrics is
 * scraped and parsed along the way.
 */
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { onCleanup } from '../helpers/cleanup.ts';
import { startNginx } from '../helpers/nginx.ts';
import { startHttpReceiver } from '../helpers/http-receiver.ts';
import { startSmtpReceiver } from '../helpers/smtp-receiver.ts';
import { tempDir } from '../helpers/tmp.ts';
import { runCli } from '../helpers/cli.ts';
import { createFleet, startVerificationHub, until, writeVersionFiles } from './verification-hub.ts';

const SECRET = 'webhook-secret-0123456789abcdef';

/** `name{labels} value` lines of a Prometheus text exposition. */
function parseMetrics(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

test('probe verifies a served deployment, a stale reload diverges and alerts, a fix verifies and resolves', async (t) => {
  const webhook = await startHttpReceiver();
  onCleanup(t, () => webhook.close());
  const smtp = await startSmtpReceiver();
  onCleanup(t, () => smtp.close());
  const hub = await startVerificationHub(t, {
    probes: { intervalSeconds: 300, graceSeconds: 120, timeoutMs: 3000 },
    alerts: {
      evaluateEverySeconds: 3600, // the test evaluates by hand
      channels: [
        { kind: 'webhook', name: 'hook', url: `${webhook.url}/alerts`, secret: SECRET },
        {
          kind: 'email',
          name: 'mail',
          host: smtp.host,
          port: smtp.port,
          starttls: false,
          from: 'certfleet@example.test',
          to: ['ops@example.test'],
        },
      ],
    },
  });
  const dir = await tempDir(t);
  const certPath = join(dir, 'fullchain.pem');
  const keyPath = join(dir, 'key.pem');

  // nginx on a port known before the endpoint exists: start it with a placeholder, then the real files
  const fleet0 = await createFleet(hub, { name: 'web', targets: [] });
  await writeVersionFiles(hub, fleet0.cert, fleet0.version, certPath, keyPath);
  const nginx = await startNginx({ certPath, keyPath });
  onCleanup(t, () => nginx.stop());
  const store = hub.ctx.store;
  const endpoint = await store.updateEndpoint(
    fleet0.endpoint.name,
    { probeTargets: [{ host: '127.0.0.1', port: nginx.port, sni: 'localhost' }] },
    'admin:test',
  );
  const { cert, sub } = fleet0;
  const v1 = fleet0.version;
  const probes = hub.verification.probes;

  // 1. the agent reports `reloaded` → an immediate probe sees v1 on the only target → verified by the probe
  await store.transitionDeployment(sub.id, v1.id, 'reloaded', {}, `agent:${endpoint.name}`);
  const verified = await until(
    async () => {
      const d = await store.getDeployment(sub.id, v1.id);
      return d?.state === 'verified' ? d : undefined;
    },
    10_000,
    'verified after the reload report',
  );
  assert.equal(verified.detail?.fingerprint, v1.fingerprint);
  const ev = (await store.listEvents({ kind: 'deployment.verified' })).at(-1)!;
  assert.equal(ev.actor, 'probe');
  const served =
    await hub.client.get<Array<{ fingerprint: string; matchesCurrent: boolean }>>('/api/v1/probes/served');
  assert.equal(served[0].fingerprint, v1.fingerprint);
  assert.equal(served[0].matchesCurrent, true);

  // 2. renew; the agent says it reloaded v2, but nginx still serves v1 (the silent reload failure)
  const v2 = await hub.renewal.renewNow(cert.name, 'admin:test', 'renew');
  await store.transitionDeployment(sub.id, v2.id, 'reloaded', {}, `agent:${endpoint.name}`);
  await new Promise((r) => setTimeout(r, 400)); // the post-reload probe is scheduled 250 ms out
  await probes.idle();
  assert.equal((await store.getDeployment(sub.id, v2.id))?.state, 'reloaded', 'within grace: not a failure');
  let report = await probes.probeEndpoint(endpoint.name);
  assert.equal(report.judgements[0].status, 'grace');

  hub.clock.advance(121_000);
  report = await probes.probeEndpoint(endpoint.name);
  assert.equal(report.judgements[0].status, 'diverged');
  const diverged = (await store.getDeployment(sub.id, v2.id))!;
  assert.equal(diverged.state, 'diverged');
  assert.equal(diverged.detail?.served, v1.fingerprint);
  assert.equal(diverged.detail?.expected, v2.fingerprint);
  assert.equal(diverged.detail?.target, `127.0.0.1:${nginx.port}/localhost`);

  // `certfleet status` shows the served column: v1's fingerprint, not the current version
  const cliEnv = {
    CERTFLEET_HUB: hub.url,
    CERTFLEET_TOKEN: hub.token,
    CERTFLEET_CA_FILE: join(hub.dir, 'data', 'ca.pem'),
  };
  const status = await runCli(['status'], cliEnv);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /SERVED/);
  assert.match(status.stdout, new RegExp(`diverged .*${v1.fingerprint.slice(0, 12)} OTHER`));

  // 3. the diverged alert reaches both channels
  const run = await hub.verification.alerts.runOnce();
  const fired = run.notified.find((n) => n.alert.kind === 'diverged');
  assert.ok(fired, 'diverged alert fired');
  assert.deepEqual(
    fired.deliveries.map((d) => [d.channel, d.ok]),
    [
      ['hook', true],
      ['mail', true],
    ],
  );
  const hooked = webhook.accepted().map((r) => ({ r, body: JSON.parse(r.body) }));
  const divergedHook = hooked.find((h) => h.body.kind === 'diverged' && h.body.status === 'firing');
  assert.ok(divergedHook);
  const expectedSig = `sha256=${createHmac('sha256', SECRET).update(divergedHook.r.body).digest('hex')}`;
  assert.equal(divergedHook.r.headers['x-certfleet-signature'], expectedSig);
  assert.equal(divergedHook.body.subject.endpoint, endpoint.name);
  const mail = smtp.messages.find((m) => /diverged|serves something other/i.test(m.subject + m.text));
  assert.ok(mail, `diverged mail received (got: ${smtp.messages.map((m) => m.subject).join(' | ')})`);
  assert.match(mail.text, /certfleet deploy web --endpoint web-edge/);
  // de-duplicated: a second evaluation sends nothing new for it
  const again = await hub.verification.alerts.runOnce();
  assert.equal(again.notified.filter((n) => n.alert.kind === 'diverged').length, 0);
  const listed = await hub.client.get<{ alerts: Array<{ kind: string }> }>('/api/v1/alerts');
  assert.ok(listed.alerts.some((a) => a.kind === 'diverged'));
  assert.ok((await store.listEvents({ kind: 'alert.fired' })).some((e) => e.data.alertKind === 'diverged'));

  // 4. /metrics: families present, values sane
  const res = await hub.app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'] as string, /text\/plain/);
  const m = parseMetrics(res.body);
  const one = (name: string, labels: Record<string, string> = {}) =>
    m.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  const servedNotAfter = one('certfleet_served_not_after_timestamp_seconds', {
    certificate: 'web',
    endpoint: 'web-edge',
  });
  assert.equal(servedNotAfter?.value, Date.parse(v1.notAfter) / 1000);
  assert.equal(
    one('certfleet_served_not_before_timestamp_seconds', { certificate: 'web', endpoint: 'web-edge' })?.value,
    Date.parse(v1.notBefore) / 1000,
  );
  assert.equal(
    one('certfleet_certificate_not_after_timestamp_seconds', { certificate: 'web' })?.value,
    Date.parse(v2.notAfter) / 1000,
  );
  assert.equal(one('certfleet_deployments', { state: 'diverged' })?.value, 1);
  assert.equal(one('certfleet_deployments', { state: 'verified' })?.value, 0);
  assert.equal(one('certfleet_planner_last_run_timestamp_seconds')?.value, 0);
  assert.equal(one('certfleet_issuance_total', { issuer: 'internal', result: 'success' })?.value, 2);
  assert.equal(
    one('certfleet_issuance_duration_seconds_count', { issuer: 'internal', result: 'success' })?.value,
    2,
  );
  assert.ok(one('certfleet_probes_total', { result: 'ok' })!.value >= 3);
  assert.ok(one('certfleet_probe_duration_seconds_count', { result: 'ok' })!.value >= 3);
  assert.ok(one('certfleet_alert_deliveries_total', { channel: 'hook', result: 'delivered' })!.value >= 1);
  assert.equal(one('certfleet_alert_deliveries_total', { channel: 'mail', result: 'failed' })?.value, 0);
  // anonymous only from loopback without a proxy header; a token works from anywhere
  const proxied = await hub.app.inject({
    method: 'GET',
    url: '/metrics',
    headers: { 'x-forwarded-for': '203.0.113.9' },
  });
  assert.equal(proxied.statusCode, 401);
  const withToken = await hub.app.inject({
    method: 'GET',
    url: '/metrics',
    headers: { 'x-forwarded-for': '203.0.113.9', authorization: `Bearer ${hub.token}` },
  });
  assert.equal(withToken.statusCode, 200);

  // 5. fix nginx: the probe verifies v2 and the alert resolves on both channels
  await writeVersionFiles(hub, cert, v2, certPath, keyPath);
  await nginx.reload();
  report = await probes.probeEndpoint(endpoint.name);
  assert.equal(report.judgements[0].status, 'verified');
  assert.equal((await store.getDeployment(sub.id, v2.id))?.state, 'verified');
  const fixed = await hub.verification.alerts.runOnce();
  const resolved = fixed.notified.find((n) => n.alert.kind === 'diverged');
  assert.equal(resolved?.reason, 'resolved');
  assert.deepEqual(resolved.deliveries.map((d) => [d.channel, d.ok]).sort(), [
    ['hook', true],
    ['mail', true],
  ]);
  assert.ok(
    webhook
      .accepted()
      .some((r) => JSON.parse(r.body).kind === 'diverged' && JSON.parse(r.body).status === 'resolved'),
  );
  assert.ok(smtp.messages.some((mm) => /^\[certfleet\] RESOLVED/.test(mm.subject)));
});
