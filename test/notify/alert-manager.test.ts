import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { DAY_MS, ManualClock } from '../../src/core/clock.ts';
import type { Alert } from '../../src/notify/alert.ts';
import { AlertManager, type AlertEvent } from '../../src/notify/alert-manager.ts';
import { expiryAlerts } from '../../src/notify/conditions.ts';
import { EmailNotifier, emailConfigSchema } from '../../src/notify/email.ts';
import type { Notifier } from '../../src/notify/notifier.ts';
import { SlackNotifier, slackConfigSchema } from '../../src/notify/slack.ts';
import { WebhookNotifier, webhookConfigSchema } from '../../src/notify/webhook.ts';
import { eventually } from '../helpers/agent.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { closedPort, startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.ts';
import { startSmtpReceiver, type SmtpReceiver } from '../helpers/smtp-receiver.ts';

const T0 = new Date('2026-03-01T00:00:00Z');
const HMAC_SECRET = 'whsec-0123456789abcdef-topsecret';
const SLACK_PATH = '/services/T0SECRET/B0SECRET/slackTokenDoNotLeak';
const SMTP_PASS = 'smtp-Pa55word-DoNotLeak';
const SECRETS = [HMAC_SECRET, SLACK_PATH, 'slackTokenDoNotLeak', SMTP_PASS];

interface Rig {
  clock: ManualClock;
  events: AlertEvent[];
  logs: string[];
  hook: HttpReceiver;
  slack: HttpReceiver;
  smtp: SmtpReceiver;
  notifiers: Notifier[];
  manager: (opts?: { renotifyAfterMs?: number; notifiers?: Notifier[] }) => AlertManager;
  /** Messages received per channel: [webhook, slack, email] (accepted only). */
  counts: () => [number, number, number];
}

async function rig(t: TestContext, opts: { smtpPass?: string } = {}): Promise<Rig> {
  // Torn down last-in first-out: channels (pooled SMTP connections) close before the receivers do.
  const hook = await startHttpReceiver();
  onCleanup(t, () => hook.close());
  const slack = await startHttpReceiver();
  onCleanup(t, () => slack.close());
  const smtp = await startSmtpReceiver({ auth: { user: 'certfleet', pass: SMTP_PASS } });
  onCleanup(t, () => smtp.close());
  const clock = new ManualClock(T0);
  const events: AlertEvent[] = [];
  const logs: string[] = [];
  const log = (obj: object, msg?: string) => logs.push(JSON.stringify({ ...obj, msg }));
  const notifiers: Notifier[] = [
    new WebhookNotifier(
      webhookConfigSchema.parse({
        kind: 'webhook',
        name: 'hook',
        url: `${hook.url}/in`,
        secret: HMAC_SECRET,
      }),
    ),
    new SlackNotifier(
      slackConfigSchema.parse({ kind: 'slack', name: 'slack', url: `${slack.url}${SLACK_PATH}` }),
    ),
    new EmailNotifier(
      emailConfigSchema.parse({
        kind: 'email',
        name: 'mail',
        host: smtp.host,
        port: smtp.port,
        auth: { user: 'certfleet', pass: opts.smtpPass ?? SMTP_PASS },
        from: 'certfleet@example.test',
        to: ['oncall@example.test'],
      }),
    ),
  ];
  onCleanup(t, () => Promise.all(notifiers.map((n) => n.close?.())));
  return {
    clock,
    events,
    logs,
    hook,
    slack,
    smtp,
    notifiers,
    manager: (o = {}) =>
      new AlertManager({
        notifiers: o.notifiers ?? notifiers,
        clock,
        recordEvent: async (e) => {
          events.push(structuredClone(e));
        },
        retry: { attempts: 3, baseDelayMs: 20 },
        renotifyAfterMs: o.renotifyAfterMs,
        redeliverAfterMs: 60_000,
        logger: { info: log, warn: log, error: log },
      }),
    counts: () => [hook.accepted().length, slack.accepted().length, smtp.messages.length],
  };
}

function alert(key: string, over: Partial<Alert> = {}): Alert {
  return {
    key,
    kind: 'diverged',
    severity: 'critical',
    status: 'firing',
    title: `endpoint e1 serves something other than ${key}`,
    message: 'Check the endpoint, then redeploy.',
    subject: { certificate: 'web', endpoint: 'e1' },
    at: T0.toISOString(),
    ...over,
  };
}

const kinds = (events: AlertEvent[]) => events.map((e) => `${e.kind} ${e.subject}`);

describe('AlertManager de-duplication and resolution', () => {
  test('the same firing set evaluated 3 times sends one message per channel; clearing sends resolved once', async (t) => {
    const r = await rig(t);
    const m = r.manager();
    const firing = [alert('diverged:web:e1')];
    for (let i = 0; i < 3; i++) {
      await m.evaluate(firing);
      r.clock.advance(60_000);
    }
    assert.deepEqual(r.counts(), [1, 1, 1]);
    assert.deepEqual(kinds(r.events), ['alert.fired diverged:web:e1']);
    assert.deepEqual(r.events[0].data.deliveredTo, ['hook', 'slack', 'mail']);
    assert.equal(JSON.parse(r.hook.requests[0].body).status, 'firing');

    await m.evaluate([]);
    await m.evaluate([]);
    assert.deepEqual(r.counts(), [2, 2, 2]);
    assert.equal(JSON.parse(r.hook.requests[1].body).status, 'resolved');
    assert.match(JSON.parse(r.slack.requests[1].body).text, /RESOLVED/);
    assert.match(r.smtp.messages[1].subject, /^\[certfleet\] RESOLVED: /);
    assert.deepEqual(kinds(r.events), ['alert.fired diverged:web:e1', 'alert.resolved diverged:web:e1']);
    assert.equal(m.stats().active, 0);
    assert.deepEqual(
      Object.values(m.stats().channels).map((c) => [c.delivered, c.failed]),
      [
        [2, 0],
        [2, 0],
        [2, 0],
      ],
    );
  });

  test('escalation re-notifies (warning → critical → imminent); de-escalation and unchanged stay quiet', async (t) => {
    const r = await rig(t);
    const m = r.manager();
    const cert = { name: 'web', notBefore: T0, notAfter: new Date(T0.getTime() + 30 * DAY_MS) };
    const daysLeft = (d: number) => r.clock.set(cert.notAfter.getTime() - d * DAY_MS);
    const seen: string[] = [];
    for (const d of [12, 10, 9, 7, 5, 4, 2, 1]) {
      daysLeft(d);
      const res = await m.evaluate(expiryAlerts([cert], r.clock.now()));
      seen.push(`${d}:${res.notified.map((n) => `${n.reason}/${n.alert.details?.stage}`).join(',')}`);
    }
    assert.deepEqual(seen, [
      '12:',
      '10:fired/warning',
      '9:',
      '7:',
      '5:escalated/critical',
      '4:',
      '2:escalated/imminent',
      '1:',
    ]);
    assert.deepEqual(r.counts(), [3, 3, 3]);
    assert.deepEqual(
      r.smtp.messages.map((x) => x.subject),
      [
        '[certfleet] FIRING warning: certificate web expires in 10 days',
        '[certfleet] FIRING critical: certificate web expires in 5 days',
        '[certfleet] FIRING critical: certificate web expires in 2 days (imminent)',
      ],
    );
    // Renewed: the condition clears and every channel hears so once.
    await m.evaluate([]);
    assert.deepEqual(r.counts(), [4, 4, 4]);
  });

  test('renotifyAfterMs re-sends a still-firing alert once the period has passed', async (t) => {
    const r = await rig(t);
    const m = r.manager({ renotifyAfterMs: 4 * 3_600_000 });
    const firing = [alert('diverged:web:e1')];
    await m.evaluate(firing);
    r.clock.advance(3 * 3_600_000);
    await m.evaluate(firing);
    assert.deepEqual(r.counts(), [1, 1, 1]);
    r.clock.advance(3_600_000);
    const res = await m.evaluate(firing);
    assert.deepEqual(
      res.notified.map((n) => n.reason),
      ['renotified'],
    );
    assert.deepEqual(r.counts(), [2, 2, 2]);
  });

  test('state exported and imported into a new manager (a hub restart) neither re-sends nor forgets', async (t) => {
    const r = await rig(t);
    const first = r.manager();
    await first.evaluate([alert('diverged:web:e1'), alert('diverged:web:e2')]);
    const saved = JSON.parse(JSON.stringify(first.exportState()));
    const second = r.manager();
    second.importState(saved);
    await second.evaluate([alert('diverged:web:e1'), alert('diverged:web:e2')]);
    assert.deepEqual(r.counts(), [2, 2, 2]);
    await second.evaluate([alert('diverged:web:e1')]);
    assert.deepEqual(r.counts(), [3, 3, 3]);
    assert.equal(JSON.parse(r.hook.requests[2].body).key, 'diverged:web:e2');
    assert.equal(JSON.parse(r.hook.requests[2].body).status, 'resolved');
    assert.throws(() => second.importState({ version: 2 }), /saved alert state is not valid/);
  });
});

describe('AlertManager delivery failures', () => {
  test('a receiver failing twice then accepting gets the alert; retries and events are recorded', async (t) => {
    const r = await rig(t);
    const m = r.manager();
    r.hook.failNext(2);
    r.smtp.failNext(1);
    const res = await m.evaluate([alert('diverged:web:e1')]);
    assert.deepEqual(
      res.notified[0].deliveries.map((d) => [d.channel, d.ok, d.attempts]),
      [
        ['hook', true, 3],
        ['slack', true, 1],
        ['mail', true, 2],
      ],
    );
    assert.equal(r.hook.requests.length, 3);
    assert.deepEqual(
      r.hook.requests.map((q) => q.status),
      [500, 500, 200],
    );
    assert.deepEqual(r.counts(), [1, 1, 1]);
    assert.deepEqual(kinds(r.events), ['alert.fired diverged:web:e1']);
    assert.deepEqual(r.events[0].data.failedChannels, []);
    const s = m.stats().channels;
    assert.deepEqual([s.hook.delivered, s.hook.retries, s.mail.retries, s.slack.retries], [1, 2, 1, 0]);
  });

  test('a channel that is down does not stop the others; it is retried on a later evaluation', async (t) => {
    const r = await rig(t);
    const port = await closedPort();
    const down = new WebhookNotifier(
      webhookConfigSchema.parse({
        kind: 'webhook',
        name: 'down',
        url: `http://127.0.0.1:${port}/x`,
        timeoutMs: 2000,
      }),
    );
    const m = r.manager({ notifiers: [down, ...r.notifiers] });
    // A second channel failing persistently with 503 that recovers later.
    r.slack.failNext(100, 503);
    const res = await m.evaluate([alert('diverged:web:e1'), alert('diverged:web:e2')]);
    assert.deepEqual([r.hook.accepted().length, r.smtp.messages.length], [2, 2], 'healthy channels got both');
    const byChannel = (name: string) =>
      res.notified.map((n) => n.deliveries.find((d) => d.channel === name)!);
    assert.deepEqual(
      byChannel('down').map((d) => [d.ok, d.attempts]),
      [
        [false, 3],
        [false, 1],
      ],
      'full retries for the first message, then one try each for the rest of the round',
    );
    assert.match(
      byChannel('down')[0].error!.message,
      /webhook channel "down" could not reach .*ECONNREFUSED/,
    );
    assert.deepEqual(
      kinds(r.events).filter((k) => k.startsWith('alert.delivery_failed')),
      [
        'alert.delivery_failed diverged:web:e1',
        'alert.delivery_failed diverged:web:e1',
        'alert.delivery_failed diverged:web:e2',
        'alert.delivery_failed diverged:web:e2',
      ],
    );
    const fired = r.events.find((e) => e.kind === 'alert.fired')!;
    assert.deepEqual(fired.data.deliveredTo, ['hook', 'mail']);
    assert.deepEqual(fired.data.failedChannels, ['down', 'slack']);
    assert.equal(m.stats().channels.down.failed, 2);

    // Slack recovers; before redeliverAfterMs nothing is re-sent, after it only the channels that missed out get it.
    r.slack.failNext(0);
    await m.evaluate([alert('diverged:web:e1'), alert('diverged:web:e2')]);
    assert.equal(r.slack.accepted().length, 0);
    r.clock.advance(60_000);
    const again = await m.evaluate([alert('diverged:web:e1'), alert('diverged:web:e2')]);
    assert.deepEqual(
      again.notified.map((n) => [n.reason, n.deliveries.map((d) => `${d.channel}:${d.ok}`).join(' ')]),
      [
        ['redelivered', 'down:false slack:true'],
        ['redelivered', 'down:false slack:true'],
      ],
    );
    assert.deepEqual(
      [r.hook.accepted().length, r.slack.accepted().length, r.smtp.messages.length],
      [2, 2, 2],
    );
  });

  test('secrets never appear in thrown errors, results, events or logs', async (t) => {
    const r = await rig(t, { smtpPass: `${SMTP_PASS}-wrong` });
    const m = r.manager();
    r.hook.failNext(100, 500, `echo ${HMAC_SECRET}`);
    r.slack.failNext(100, 500, `echo ${SLACK_PATH}`);
    const res = await m.evaluate([alert('diverged:web:e1')]);
    await m.evaluate([]);
    const tests = await m.sendTest();
    assert.deepEqual(
      res.notified[0].deliveries.map((d) => d.ok),
      [false, false, false],
    );
    assert.match(res.notified[0].deliveries[2].error!.message, /535/);
    assert.equal(res.notified[0].deliveries[2].attempts, 1, 'an authentication failure is not retried');
    const everything = JSON.stringify({ res, tests, events: r.events, logs: r.logs, stats: m.stats() });
    assert.ok(r.events.some((e) => e.kind === 'alert.delivery_failed'));
    assert.ok(everything.includes('HTTP 500'), 'errors are there, only the secrets are not');
    for (const s of SECRETS) assert.ok(!everything.includes(s), `leaked ${s}`);
    // The receivers did get the real requests (so the secrets were in use).
    assert.equal(r.slack.requests[0].path, SLACK_PATH);
  });
});

describe('AlertManager.sendTest', () => {
  test('sends a test alert to each channel and reports per-channel results', async (t) => {
    const r = await rig(t);
    const port = await closedPort();
    const down = new SlackNotifier(
      slackConfigSchema.parse({ kind: 'slack', name: 'down', url: `http://127.0.0.1:${port}${SLACK_PATH}` }),
    );
    const m = r.manager({ notifiers: [...r.notifiers, down] });
    const results = await m.sendTest();
    assert.deepEqual(
      results.map((x) => [x.channel, x.kind, x.ok, x.attempts]),
      [
        ['hook', 'webhook', true, 1],
        ['slack', 'slack', true, 1],
        ['mail', 'email', true, 1],
        ['down', 'slack', false, 1],
      ],
    );
    assert.match(
      results[3].error!.message,
      /slack channel "down" could not reach http:\/\/127\.0\.0\.1:\d+\/…/,
    );
    assert.equal(JSON.parse(r.hook.requests[0].body).kind, 'test');
    assert.equal(r.smtp.messages[0].subject, '[certfleet] TEST: certfleet test alert');
    assert.deepEqual(kinds(r.events), ['alert.test test']);
    assert.equal(m.stats().active, 0, 'a test alert is never active');
  });
});

describe('AlertManager channel isolation and cancellation', () => {
  test('a channel that hangs does not delay delivery to the others', async (t) => {
    const r = await rig(t);
    const hanging = await startHttpReceiver();
    onCleanup(t, () => hanging.close());
    hanging.hangNext(10);
    const slow = new WebhookNotifier(
      webhookConfigSchema.parse({ kind: 'webhook', name: 'slow', url: hanging.url, timeoutMs: 120_000 }),
    );
    const m = r.manager({ notifiers: [slow, ...r.notifiers] });
    let settled = false;
    const evaluating = m.evaluate([alert('diverged:web:e1')]).finally(() => (settled = true));
    // The slow channel hangs until released below, so the others must deliver while it still hangs.
    await eventually(() => r.counts().every((c) => c === 1), 30_000, 'healthy channels delivered');
    assert.equal(settled, false, 'evaluate waits for the slow channel');
    assert.equal(hanging.requests.length, 1, 'the slow channel was sent to');
    await hanging.close();
    const res = await evaluating;
    assert.deepEqual(r.counts(), [1, 1, 1]);
    const d = res.notified[0].deliveries[0];
    assert.equal(d.channel, 'slow');
    assert.equal(d.ok, false);
  });

  test('a channel that does not answer gives up at its timeout, saying so', async (t) => {
    const hanging = await startHttpReceiver();
    onCleanup(t, () => hanging.close());
    hanging.hangNext(1);
    const slow = new WebhookNotifier(
      webhookConfigSchema.parse({ kind: 'webhook', name: 'slow', url: hanging.url, timeoutMs: 300 }),
    );
    await assert.rejects(slow.send(alert('diverged:web:e1')), {
      message: /^webhook channel "slow" did not answer within 300 ms/,
    });
    assert.equal(hanging.requests.length, 1);
  });

  test('an aborted evaluation throws and leaves the state as it was, so the next one sends again', async (t) => {
    const r = await rig(t);
    const m = r.manager();
    const ac = new AbortController();
    ac.abort(new Error('hub shutting down'));
    await assert.rejects(m.evaluate([alert('diverged:web:e1')], ac.signal), /hub shutting down/);
    assert.equal(m.stats().active, 0);
    assert.deepEqual(r.counts(), [0, 0, 0]);
    await m.evaluate([alert('diverged:web:e1')]);
    assert.deepEqual(r.counts(), [1, 1, 1]);
  });
});
