/**
 * The agent's report outbox against a small stand-in hub that refuses a batch, then accepts one report, refuses
 * another for good (403) and fails the third with 503 until it "comes back": no report may be lost, and the
 * refused one is logged and kept aside, not dropped silently.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { generateAgentKeys } from '../../src/agent/agent-identity.ts';
import { AgentRunner } from '../../src/agent/run-agent.ts';
import { AgentStateStore } from '../../src/agent/state-store.ts';
import type { AgentReport } from '../../src/protocol/wire.ts';
import { createLogger } from '../../src/core/log.ts';
import { eventually } from '../helpers/agent.ts';
import { tempDir } from '../helpers/tmp.ts';
import { onCleanup } from '../helpers/cleanup.ts';

const report = (state: AgentReport['state']): AgentReport => ({
  subscriptionId: randomUUID(),
  versionId: randomUUID(),
  state,
  at: new Date().toISOString(),
});

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text;
}

describe('report outbox', () => {
  test('a refused batch goes one by one: accepted ones leave, a 403 is kept aside and logged, a 503 keeps the rest queued until the hub takes it', async (t) => {
    let runner: AgentRunner | undefined;
    const server = createServer();
    const stateDir = await tempDir(t, 'certfleet-outbox-');
    onCleanup(t, async () => {
      // Registered after the directory: runs first, so the agent and stand-in hub stop before it goes.
      await runner?.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    const [accepted, refused, unlucky] = [report('installed'), report('reloaded'), report('verified')];
    await new AgentStateStore(stateDir).savePendingReports([accepted, refused, unlucky]);

    const endpointId = randomUUID();
    const taken: string[] = [];
    const batches: number[] = [];
    let hubBack = false;
    let unavailableOnce!: () => void;
    const unavailable = new Promise<void>((r) => (unavailableOnce = r));
    server.on('request', async (req, res) => {
      const body = await bodyOf(req);
      const url = new URL(req.url!, 'http://hub');
      if (url.pathname === '/api/v1/agent/desired') {
        const answer = () =>
          send(res, 200, { revision: 1, endpointId, endpointName: 'web1', subscriptions: [] });
        const hold = setTimeout(answer, Number(url.searchParams.get('wait')) * 1000);
        res.on('close', () => clearTimeout(hold));
        return;
      }
      const doc = JSON.parse(body) as AgentReport | { reports: AgentReport[] };
      if ('reports' in doc) {
        batches.push(doc.reports.length);
        return send(res, 400, { code: 'VALIDATION_FAILED', message: 'one report in the batch is invalid' });
      }
      if (doc.subscriptionId === refused.subscriptionId)
        return send(res, 403, { code: 'FORBIDDEN', message: 'subscription of another endpoint' });
      if (doc.subscriptionId === unlucky.subscriptionId && !hubBack) {
        unavailableOnce();
        return send(res, 503, { code: 'INTERNAL', message: 'hub is restarting' });
      }
      taken.push(doc.subscriptionId);
      send(res, 200, { accepted: 1 });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));

    const logs: string[] = [];
    runner = new AgentRunner({
      stateDir,
      identity: {
        hub: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        endpointId,
        endpointName: 'web1',
        caPem: '',
        caFingerprint: '',
        enrolledAt: new Date().toISOString(),
        keys: generateAgentKeys(),
      },
      longPollSeconds: 1,
      logger: createLogger({
        level: 'info',
        destination: new Writable({ write: (c, _e, cb) => (logs.push(c.toString()), cb()) }),
      }),
      deploy: async () => assert.fail('nothing to deploy'),
    });
    await runner.start();

    await unavailable;
    const queued = async () => JSON.parse(await readFile(join(stateDir, 'reports.json'), 'utf8'));
    await eventually(
      async () => runner!.pendingReports === 1 && (await queued()).length === 1,
      10_000,
      'the settled reports leave the queue',
    );
    assert.deepEqual(await queued(), [unlucky], 'the report hit by the 503 is still queued, on disk');
    assert.deepEqual(batches, [3]);
    assert.deepEqual(taken, [accepted.subscriptionId]);

    const kept = (await readFile(join(stateDir, 'reports-refused.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(kept.length, 1);
    assert.deepEqual(JSON.parse(kept[0]).report, refused);
    assert.equal(JSON.parse(kept[0]).error, 'subscription of another endpoint');
    const line = logs.map((l) => JSON.parse(l)).find((l) => l.msg.startsWith('hub refused a report'));
    assert.equal(line?.subscription_id, refused.subscriptionId);
    assert.equal(line?.kept_in, join(stateDir, 'reports-refused.jsonl'));

    hubBack = true;
    await eventually(
      async () => runner!.pendingReports === 0 && (await queued()).length === 0,
      15_000,
      'the queued report is sent once the hub is back',
    );
    assert.deepEqual(taken, [accepted.subscriptionId, unlucky.subscriptionId]);
  });
});
