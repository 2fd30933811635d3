/**
 * The probe scheduler against real loopback servers that fail in every way a person must be told about:
 * expired, wrong hostname, broken chain (leaf sent alone), refused, timeout, STARTTLS (SMTP) good and refused.
 * Results are stored per target with the right error kind; a dead target does not stall the batch.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { onCleanup } from '../helpers/cleanup.ts';
import { createTestPki } from '../helpers/probe-pki.ts';
import {
  closedPort,
  startSilentServer,
  startStartTlsServer,
  startTlsServer,
} from '../helpers/tls-servers.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { ProbeView } from '../../src/hub/probe-service.ts';
import { startVerificationHub } from './verification-hub.ts';

const DAY = 86_400_000;

test('stored probe results carry the right error kinds; a dead target never stalls the rest', async (t) => {
  const pki = await createTestPki('verification errors');
  const dir = await tempDir(t);
  const bundle = join(dir, 'trust.pem');
  await writeFile(bundle, pki.root.certPem);

  const good = await pki.issueLeaf({ dns: ['good.test'] });
  const expired = await pki.issueLeaf({
    dns: ['expired.test'],
    notBefore: new Date(Date.now() - 40 * DAY),
    notAfter: new Date(Date.now() - DAY),
  });
  const wrongName = await pki.issueLeaf({ dns: ['other.test'] });
  const mail = await pki.issueLeaf({ dns: ['mail.test'] });
  const servers = await Promise.all([
    startTlsServer(good),
    startTlsServer(expired),
    startTlsServer(wrongName),
    startTlsServer({ certPem: good.certPem, keyPem: good.keyPem }), // chain missing
    startSilentServer(),
    startStartTlsServer('smtp', mail),
    startStartTlsServer('smtp', mail, { offerStartTls: false }),
  ]);
  onCleanup(t, () => Promise.all(servers.map((s) => s.close())));
  const [okS, expiredS, wrongS, brokenS, silentS, smtpS, noTlsS] = servers;
  const refusedPort = await closedPort();

  const hub = await startVerificationHub(t, {
    probes: { timeoutMs: 800, concurrency: 4, trustBundleFile: bundle },
  });
  const targets = [
    { host: '127.0.0.1', port: okS.port, sni: 'good.test' },
    { host: '127.0.0.1', port: expiredS.port, sni: 'expired.test' },
    { host: '127.0.0.1', port: wrongS.port, sni: 'wanted.test' },
    { host: '127.0.0.1', port: brokenS.port, sni: 'good.test' },
    { host: '127.0.0.1', port: refusedPort, sni: 'good.test' },
    { host: '127.0.0.1', port: silentS.port, sni: 'good.test' },
    { host: '127.0.0.1', port: smtpS.port, sni: 'mail.test', starttls: 'smtp' as const },
    { host: '127.0.0.1', port: noTlsS.port, sni: 'mail.test', starttls: 'smtp' as const },
  ];
  await hub.ctx.store.createEndpoint(
    { name: 'zoo', kind: 'connector', probeTargets: targets, labels: {} },
    'admin:test',
  );

  // that the silent target holds only its own slot is test/probe/probe-many.test.ts's job
  const reports = await hub.client.post<Array<{ endpoint: string }>>('/api/v1/probes/run', {});
  assert.equal(reports.length, 1);

  const results = await hub.client.get<ProbeView[]>('/api/v1/probes');
  const byPort = new Map(results.map((r) => [Number(/:(\d+)/.exec(r.targetKey)![1]), r]));
  const kind = (port: number) => byPort.get(port)?.errorKind ?? (byPort.get(port)?.ok ? 'ok' : 'missing');
  assert.equal(kind(okS.port), 'ok');
  assert.equal(kind(expiredS.port), 'expired');
  assert.equal(kind(wrongS.port), 'hostname_mismatch');
  assert.equal(kind(brokenS.port), 'missing_intermediate');
  assert.equal(kind(refusedPort), 'refused');
  assert.equal(kind(silentS.port), 'timeout');
  assert.equal(kind(smtpS.port), 'ok');
  assert.equal(kind(noTlsS.port), 'starttls');
  // what was served is recorded even when it is not valid, and every error says what to do
  assert.ok(byPort.get(expiredS.port)?.fingerprint);
  assert.ok(byPort.get(expiredS.port)?.notAfter);
  assert.match(byPort.get(smtpS.port)!.tlsVersion!, /^TLSv1\.[23]$/);
  const handshakeMs = byPort.get(okS.port)!.handshakeMs;
  assert.ok(Number.isInteger(handshakeMs) && handshakeMs! >= 0, `handshake time in whole ms: ${handshakeMs}`);
  assert.equal(byPort.get(refusedPort)!.handshakeMs, undefined, 'no handshake, no handshake time');
  for (const r of results.filter((x) => !x.ok)) assert.ok((r.errorMessage ?? '').length > 20, r.targetKey);
  assert.equal(results.filter((r) => r.endpoint === 'zoo').length, targets.length);

  const metrics = (await hub.app.inject({ method: 'GET', url: '/metrics' })).body;
  assert.match(metrics, /certfleet_probes_total\{result="timeout",source="hub"\} 1/);
  assert.match(metrics, /certfleet_probes_total\{result="ok",source="hub"\} 2/);
});
