import { createHmac, timingSafeEqual } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Alert } from '../../src/notify/alert.ts';
import { createNotifierRegistry } from '../../src/notify/builtin-notifiers.ts';
import { EmailNotifier, emailConfigSchema } from '../../src/notify/email.ts';
import { SlackNotifier, slackConfigSchema } from '../../src/notify/slack.ts';
import { WebhookNotifier, webhookConfigSchema } from '../../src/notify/webhook.ts';
import { CertfleetError } from '../../src/core/errors.ts';
import { onCleanup, suiteCleanup } from '../helpers/cleanup.ts';
import { closedPort, startHttpReceiver } from '../helpers/http-receiver.ts';
import { startSmtpReceiver } from '../helpers/smtp-receiver.ts';

const alert: Alert = {
  key: 'expiring:cert:web',
  kind: 'expiring',
  severity: 'critical',
  status: 'firing',
  title: 'certificate web expires in 3 days',
  message: 'Certificate web expires soon. Renew it: certfleet renew web.',
  subject: { certificate: 'web' },
  at: '2026-11-23T10:00:00.000Z',
  level: 2,
  details: { stage: 'critical' },
};
const HMAC_SECRET = 'whsec-7f3a9c1e5b2d4f60a8e1';
const SLACK_PATH = '/services/T0AAAAAAA/B0BBBBBBB/XyZsecretSlackToken123';
const SMTP_PASS = 'smtp-pa55-Very-Secret';

/** Fails unless `fn` rejects with a CertfleetError whose message/hint/details contain none of `secrets`. */
async function rejectsWithout(
  fn: () => Promise<void>,
  secrets: string[],
  expect: RegExp,
): Promise<CertfleetError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof CertfleetError, `expected a CertfleetError, got ${String(caught)}`);
  assert.equal(caught.code, 'NOTIFY_FAILED');
  assert.match(caught.message, expect);
  const shown = JSON.stringify(caught.toJSON()) + String(caught.stack);
  for (const s of secrets) assert.ok(!shown.includes(s), `error leaks "${s}": ${shown}`);
  return caught;
}

describe('webhook channel', () => {
  test('POSTs the alert as JSON with a valid HMAC-SHA256 signature of the raw body', async (t) => {
    const rx = await startHttpReceiver();
    onCleanup(t, () => rx.close());
    const n = new WebhookNotifier(
      webhookConfigSchema.parse({
        kind: 'webhook',
        name: 'ops-hook',
        url: `${rx.url}/hooks/certfleet`,
        secret: HMAC_SECRET,
        headers: { 'x-team': 'infra' },
      }),
    );
    const sentFrom = Math.floor(Date.now() / 1000);
    await n.send(alert);
    const sentBy = Math.ceil(Date.now() / 1000);
    assert.equal(rx.requests.length, 1);
    const req = rx.requests[0];
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/hooks/certfleet');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['x-team'], 'infra');
    assert.deepEqual(JSON.parse(req.body), alert);
    // Verify as a receiver would: recompute over the raw bytes and compare in constant time.
    const sig = String(req.headers['x-certfleet-signature']);
    assert.match(sig, /^sha256=[0-9a-f]{64}$/);
    const expected = Buffer.from(
      `sha256=${createHmac('sha256', HMAC_SECRET).update(req.body).digest('hex')}`,
    );
    assert.ok(timingSafeEqual(Buffer.from(sig), expected), 'signature verifies with the shared secret');
    const ts = Number(req.headers['x-certfleet-timestamp']);
    assert.ok(
      Number.isInteger(ts) && ts >= sentFrom && ts <= sentBy,
      `timestamp ${ts} is unix seconds at sending`,
    );
  });

  test('no secret: no signature header', async (t) => {
    const rx = await startHttpReceiver();
    onCleanup(t, () => rx.close());
    await new WebhookNotifier(webhookConfigSchema.parse({ kind: 'webhook', url: rx.url })).send(alert);
    assert.equal(rx.requests[0].headers['x-certfleet-signature'], undefined);
  });

  test('an HTTP 500 names the channel and status, never the secret, the token header or the URL path', async (t) => {
    const rx = await startHttpReceiver({ failFirst: 1, failBody: `bad signature for ${HMAC_SECRET}` });
    onCleanup(t, () => rx.close());
    const n = new WebhookNotifier(
      webhookConfigSchema.parse({
        kind: 'webhook',
        name: 'ops-hook',
        url: `${rx.url}/hook/tok-abcdef123456?key=querysecret99`,
        secret: HMAC_SECRET,
        headers: { authorization: 'Bearer header-token-4242' },
      }),
    );
    const e = await rejectsWithout(
      () => n.send(alert),
      [HMAC_SECRET, 'tok-abcdef123456', 'querysecret99', 'header-token-4242'],
      /webhook channel "ops-hook" got HTTP 500 from http:\/\/127\.0\.0\.1:\d+/,
    );
    assert.equal(e.details?.retryable, true);
  });

  test('a 404 is not retryable; a closed port is named as unreachable', async (t) => {
    const rx = await startHttpReceiver({ failFirst: 1, failStatus: 404 });
    onCleanup(t, () => rx.close());
    const e404 = await rejectsWithout(
      () => new WebhookNotifier(webhookConfigSchema.parse({ kind: 'webhook', url: rx.url })).send(alert),
      [],
      /HTTP 404/,
    );
    assert.equal(e404.details?.retryable, false);
    const port = await closedPort();
    await rejectsWithout(
      () =>
        new WebhookNotifier(
          webhookConfigSchema.parse({ kind: 'webhook', url: `http://127.0.0.1:${port}/x/secretpath` }),
        ).send(alert),
      ['secretpath'],
      /could not reach http:\/\/127\.0\.0\.1:\d+\/…: ECONNREFUSED/,
    );
  });
});

describe('slack channel', () => {
  test('sends an incoming-webhook payload { text, blocks } with emoji and severity; resolved is marked', async (t) => {
    const rx = await startHttpReceiver();
    onCleanup(t, () => rx.close());
    const n = new SlackNotifier(
      slackConfigSchema.parse({ kind: 'slack', name: 'sre', url: `${rx.url}${SLACK_PATH}` }),
    );
    await n.send({ ...alert, subject: { certificate: 'web', endpoint: 'lb<1>' } });
    await n.send({ ...alert, status: 'resolved' });
    await n.send({ ...alert, severity: 'warning', level: 1 });
    assert.equal(rx.requests[0].path, SLACK_PATH);
    const [firing, resolved, warning] = rx.requests.map((r) => JSON.parse(r.body));
    assert.deepEqual(Object.keys(firing).sort(), ['blocks', 'text']);
    assert.match(firing.text, /:rotating_light: FIRING critical: certificate web expires in 3 days/);
    assert.equal(firing.blocks[0].type, 'header');
    assert.equal(firing.blocks[0].text.type, 'plain_text');
    assert.equal(firing.blocks[1].type, 'section');
    assert.equal(firing.blocks[1].text.type, 'mrkdwn');
    assert.match(firing.blocks[1].text.text, /certfleet renew web/);
    assert.equal(firing.blocks[2].type, 'context');
    assert.match(
      firing.blocks[2].elements[0].text,
      /\*endpoint\* lb&lt;1&gt;/,
      'mrkdwn control characters escaped',
    );
    assert.match(resolved.text, /:white_check_mark: RESOLVED: certificate web expires in 3 days/);
    assert.match(warning.text, /:warning: FIRING warning/);
  });

  test('a failing Slack webhook never shows the URL path (the token) in the error', async (t) => {
    const rx = await startHttpReceiver({ failFirst: 1, failStatus: 403, failBody: 'invalid_token' });
    onCleanup(t, () => rx.close());
    const n = new SlackNotifier(
      slackConfigSchema.parse({ kind: 'slack', name: 'sre', url: `${rx.url}${SLACK_PATH}` }),
    );
    const e = await rejectsWithout(
      () => n.send(alert),
      [SLACK_PATH, 'XyZsecretSlackToken123', 'B0BBBBBBB'],
      /slack channel "sre" got HTTP 403 from http:\/\/127\.0\.0\.1:\d+\/…: invalid_token/,
    );
    assert.equal(e.details?.retryable, false);
  });
});

describe('email channel', () => {
  const atEnd = suiteCleanup();
  const started = startSmtpReceiver({ auth: { user: 'certfleet', pass: SMTP_PASS }, starttls: true });
  atEnd(async () => (await started).close());
  const email = (config: Record<string, unknown>) => {
    const n = new EmailNotifier(emailConfigSchema.parse({ kind: 'email', ...config }));
    atEnd(() => n.close());
    return n;
  };

  test('delivers over real SMTP with STARTTLS and auth: subject names status, severity and title', async () => {
    const rx = await started;
    const n = email({
      name: 'oncall',
      host: rx.host,
      port: rx.port,
      starttls: true,
      auth: { user: 'certfleet', pass: SMTP_PASS },
      from: 'certfleet@example.test',
      to: ['oncall@example.test', 'sre@example.test'],
      tls: { ca: rx.caPem },
    });
    const before = rx.messages.length;
    await n.send(alert);
    await n.send({ ...alert, status: 'resolved' });
    const [m, r] = rx.messages.slice(before);
    assert.equal(m.subject, '[certfleet] FIRING critical: certificate web expires in 3 days');
    assert.equal(m.user, 'certfleet');
    assert.equal(m.secure, true, 'STARTTLS was used');
    assert.equal(m.from, 'certfleet@example.test');
    assert.deepEqual(m.to, ['oncall@example.test', 'sre@example.test']);
    assert.match(m.text, /Renew it: certfleet renew web\./);
    assert.match(m.text, /Certificate: +web/);
    assert.match(m.text, /Condition: +expiring:cert:web/);
    assert.equal(m.headers['x-certfleet-alert-key'], 'expiring:cert:web');
    assert.ok(!m.raw.includes(SMTP_PASS));
    assert.equal(r.subject, '[certfleet] RESOLVED: certificate web expires in 3 days');
  });

  test('a wrong password fails with the SMTP reply, not retryable, without the password', async () => {
    const rx = await started;
    const n = email({
      name: 'oncall',
      host: rx.host,
      port: rx.port,
      auth: { user: 'certfleet', pass: `${SMTP_PASS}-wrong` },
      from: 'certfleet@example.test',
      to: ['oncall@example.test'],
      tls: { ca: rx.caPem },
    });
    const e = await rejectsWithout(
      () => n.send(alert),
      [SMTP_PASS],
      /email channel "oncall" could not send via 127\.0\.0\.1:\d+: SMTP server replied "535[^"]*" \(EAUTH\)/,
    );
    assert.equal(e.details?.retryable, false);
    assert.equal(e.details?.smtpCode, 535);
    assert.match(e.hint, /user and password/);
  });

  test('an untrusted STARTTLS certificate is refused', async () => {
    const rx = await started;
    const n = email({
      host: rx.host,
      port: rx.port,
      starttls: true,
      auth: { user: 'certfleet', pass: SMTP_PASS },
      from: 'certfleet@example.test',
      to: ['oncall@example.test'],
    });
    await rejectsWithout(() => n.send(alert), [SMTP_PASS], /email channel "email" could not send/);
  });
});

describe('notifier registry', () => {
  test('builds channels by kind and reports bad configs by path without echoing values', () => {
    const reg = createNotifierRegistry();
    assert.deepEqual(reg.kinds(), ['email', 'slack', 'webhook']);
    const [w, s] = reg.createAll([
      { kind: 'webhook', name: 'a', url: 'https://hooks.example.test/x' },
      { kind: 'slack', url: 'https://hooks.slack.test/services/T/B/secret' },
    ]);
    assert.equal(w.kind, 'webhook');
    assert.equal(s.name, 'slack');
    assert.throws(() => reg.create({ kind: 'pager' }), /unknown channel kind "pager"/);
    assert.throws(
      () => reg.create({ kind: 'webhook', url: 'not a url', secret: 'short' }),
      (e: Error) =>
        /url: Invalid URL/.test(e.message) && /secret/.test(e.message) && !e.message.includes('short'),
    );
    assert.throws(
      () =>
        reg.createAll([
          { kind: 'webhook', url: 'https://a.test/' },
          { kind: 'webhook', url: 'https://b.test/' },
        ]),
      /two channels are named "webhook"/,
    );
  });
});
