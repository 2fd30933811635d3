/**
 * What Prometheus tooling says about certfleet:
 * - a real scrape of /metrics passes `promtool check metrics`, and carries per-target probe success, the served
 *   leaf (fingerprint, serial, notAfter), each certificate's lifetime and renewal due time, deployment states,
 *   agent contact, build info and the process metrics;
 * - the shipped alerting rules pass `promtool check rules` and their unit tests (`promtool test rules`);
 * - the shipped Grafana dashboard is JSON, and its queries and the alerting rules name only metrics a real scrape
 *   has.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { createCertificate, enrollTestAgent, subscribe } from '../helpers/agent.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { startTlsServer } from '../helpers/tls-servers.ts';

const RULES_DIR = new URL('../../deploy/prometheus/', import.meta.url).pathname;
const DASHBOARD = new URL('../../deploy/grafana/certfleet.json', import.meta.url);

/** Runs promtool; resolves with its exit code and output. */
function promtool(args: string[], opts: { stdin?: string; cwd?: string } = {}) {
  return new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const child = spawn('promtool', args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.end(opts.stdin ?? '');
  });
}

/** GET /metrics over HTTPS with a bearer token, as a Prometheus scrape job configured with the hub CA. */
function scrape(hub: TestHub): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${hub.url}/metrics`,
      { ca: hub.caPem, headers: { authorization: `Bearer ${hub.token}` } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}: ${body}`)),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** `name{labels} value` lines of the exposition text, labels parsed. */
function samples(text: string) {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(l);
      assert.ok(m, `parses: ${l}`);
      const labels = Object.fromEntries(
        [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
      );
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}

test('a real scrape passes promtool, and the dashboard and alerting rules query only metrics it has', async (t) => {
  const hub = await startTestHub(t);
  await createCertificate(hub, 'web', ['web.test']);
  const cert = (await hub.ctx.store.getCertificate('web'))!;
  const version = (await hub.ctx.store.currentVersion(cert.id))!;
  // An endpoint target serving the current version: its probe sees our fingerprint and serial.
  const server = await startTlsServer({
    certPem: version.certPem,
    chainPems: [version.chainPem],
    keyPem: await hub.certificates.privateKeyOf(cert, version),
  });
  onCleanup(t, () => server.close());
  const agent = await enrollTestAgent(t, hub, 'e1');
  await hub.client.post('/api/v1/endpoints', {
    name: 'c1',
    kind: 'connector',
    probeTargets: [{ host: '127.0.0.1', port: server.port, sni: 'web.test' }],
  });
  await subscribe(hub, 'c1', 'web');
  await subscribe(hub, 'e1', 'web');
  await agent.client.desired(-1, 0); // a signed request: the agent's contact is recorded
  await hub.client.post('/api/v1/probes/run');

  const text = await scrape(hub);
  const check = await promtool(['check', 'metrics'], { stdin: text });
  assert.equal(check.out.trim(), '', 'promtool reports no problem');
  assert.equal(check.code, 0);

  const all = samples(text);
  const one = (name: string, labels: Record<string, string> = {}) => {
    const found = all.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
    assert.equal(found.length, 1, `one ${name} ${JSON.stringify(labels)}`);
    return found[0]!;
  };
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  assert.equal(one('certfleet_build_info', { version: pkg.version, node: process.version }).value, 1);

  const target = `127.0.0.1:${server.port}/web.test`;
  assert.ok([0, 1].includes(one('certfleet_probe_success', { endpoint: 'c1', target }).value));
  const served = one('certfleet_served_certificate_info', { endpoint: 'c1', target });
  assert.equal(served.labels.fingerprint, version.fingerprint);
  assert.equal(served.labels.serial, version.serial);
  assert.equal(served.labels.not_after, version.notAfter);

  const notBefore = Date.parse(version.notBefore) / 1000;
  const notAfter = Date.parse(version.notAfter) / 1000;
  const web = { certificate: 'web' };
  assert.equal(one('certfleet_certificate_not_before_timestamp_seconds', web).value, notBefore);
  assert.equal(one('certfleet_certificate_not_after_timestamp_seconds', web).value, notAfter);
  assert.equal(
    one('certfleet_served_not_before_timestamp_seconds', { ...web, endpoint: 'c1' }).value,
    notBefore,
  );
  const due = one('certfleet_certificate_renewal_due_timestamp_seconds', web).value;
  assert.ok(due > notBefore && due < notAfter, 'renewal is due within the lifetime');
  assert.equal(one('certfleet_deployment_state', { ...web, endpoint: 'e1' }).labels.state, 'pending');
  assert.ok(one('certfleet_agent_last_seen_timestamp_seconds', { endpoint: 'e1' }).value > 0);
  assert.ok(one('process_cpu_seconds_total').value > 0);
  assert.ok(one('nodejs_heap_size_used_bytes').value > 0);

  // Every metric a dashboard query or an alerting rule names is exported.
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
  const exprs: string[] = dashboard.panels.flatMap((p: { targets?: Array<{ expr: string }> }) =>
    (p.targets ?? []).map((x) => x.expr),
  );
  assert.ok(exprs.length >= 10, 'the dashboard has queries');
  const rules = parseYaml(readFileSync(join(RULES_DIR, 'certfleet-rules.yml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ expr: string }> }>;
  };
  const ruleExprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
  assert.ok(ruleExprs.length >= 10, 'the rules file has rules');
  exprs.push(...ruleExprs);
  // Families the scrape declares (a labelled counter with no sample yet is still declared), histograms with
  // their series suffixes.
  const names = new Set(
    [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) =>
      type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!],
    ),
  );
  const queried = new Set(exprs.flatMap((e) => e.match(/\b(?:certfleet|process|nodejs)_[a-z0-9_]+/g) ?? []));
  const missing = [...queried].filter((n) => !names.has(n));
  assert.deepEqual(missing, [], 'metrics the dashboard or the rules query but the hub does not export');
});

test('the shipped alerting rules are valid and pass their unit tests', async () => {
  const check = await promtool(['check', 'rules', 'certfleet-rules.yml'], { cwd: RULES_DIR });
  assert.equal(check.code, 0, check.out);
  assert.match(check.out, /SUCCESS: \d+ rules found/);
  const unit = await promtool(['test', 'rules', 'certfleet-rules.test.yml'], { cwd: RULES_DIR });
  assert.equal(unit.code, 0, unit.out);
  assert.match(unit.out, /SUCCESS/);
});
