import { createTransport } from 'nodemailer';
import { z } from 'zod';
import { CertfleetError } from '../core/errors.ts';
import { headline, type Alert } from './alert.ts';
import type { Notifier, NotifierFactory } from './notifier.ts';
import { scrub } from './redact.ts';

export const emailConfigSchema = z
  .object({
    kind: z.literal('email'),
    name: z.string().min(1).optional(),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    /** Implicit TLS from the first byte (usually port 465). */
    secure: z.boolean().default(false),
    /** true: refuse to send unless STARTTLS succeeds; false: never upgrade; unset: upgrade when offered. */
    starttls: z.boolean().optional(),
    auth: z
      .object({ user: z.string().min(1), pass: z.string().min(1) })
      .strict()
      .optional(),
    from: z.string().min(3),
    to: z.array(z.string().min(3)).min(1),
    /** Trust for a private relay: a PEM CA bundle, or (discouraged) no verification at all. */
    tls: z
      .object({ ca: z.string().optional(), rejectUnauthorized: z.boolean().default(true) })
      .strict()
      .optional(),
    timeoutMs: z.number().int().positive().max(120_000).default(15_000),
  })
  .strict();
export type EmailConfig = z.infer<typeof emailConfigSchema>;

export function emailSubject(alert: Alert): string {
  return `[certfleet] ${headline(alert)}`;
}

export function emailText(alert: Alert): string {
  const rows: Array<[string, string | undefined]> = [
    ['Status', alert.status],
    ['Severity', alert.severity],
    ['Kind', alert.kind],
    ['Certificate', alert.subject.certificate],
    ['Endpoint', alert.subject.endpoint],
    ['Condition', alert.key],
    ['At', alert.at],
  ];
  const facts = rows.filter(([, v]) => v !== undefined).map(([k, v]) => `${`${k}:`.padEnd(13)}${v}`);
  const details = Object.entries(alert.details ?? {}).map(
    ([k, v]) => `  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`,
  );
  return [
    headline(alert),
    '',
    alert.message,
    '',
    ...facts,
    ...(details.length ? ['Details:', ...details] : []),
    '',
    '-- ',
    'certfleet alerting',
    '',
  ].join('\n');
}

interface SmtpError {
  code?: string;
  response?: string;
  responseCode?: number;
  message?: string;
}

function openPool(c: EmailConfig) {
  return createTransport({
    pool: true,
    maxConnections: 2,
    idleTimeout: 30_000,
    host: c.host,
    port: c.port,
    secure: c.secure,
    requireTLS: c.starttls === true,
    ignoreTLS: c.starttls === false,
    auth: c.auth ? { user: c.auth.user, pass: c.auth.pass } : undefined,
    tls: c.tls ? { ca: c.tls.ca, rejectUnauthorized: c.tls.rejectUnauthorized } : undefined,
    connectionTimeout: c.timeoutMs,
    greetingTimeout: c.timeoutMs,
    socketTimeout: c.timeoutMs,
  });
}
type SmtpPool = ReturnType<typeof openPool>;

/**
 * Sends one plain-text message per alert over SMTP. Connections are pooled (at most 2, closed after 30 s idle)
 * so a burst of alerts does not pay a TCP + TLS + AUTH handshake per message; call close() at shutdown.
 */
export class EmailNotifier implements Notifier {
  readonly kind = 'email';
  readonly name: string;
  private transport?: SmtpPool;

  constructor(private readonly config: EmailConfig) {
    this.name = config.name ?? 'email';
  }

  private pool(): SmtpPool {
    this.transport ??= openPool(this.config);
    return this.transport;
  }

  async send(alert: Alert, signal?: AbortSignal): Promise<void> {
    const c = this.config;
    try {
      await this.pool().sendMail({
        from: c.from,
        to: c.to,
        subject: emailSubject(alert),
        text: emailText(alert),
        headers: { 'X-Certfleet-Alert-Key': alert.key, 'X-Certfleet-Alert-Status': alert.status },
        signal,
      });
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw this.describe(e as SmtpError);
    }
  }

  /** Closes pooled SMTP connections; a later send opens new ones. */
  close(): void {
    this.transport?.close();
    this.transport = undefined;
  }

  private describe(e: SmtpError): CertfleetError {
    const c = this.config;
    const secrets = [c.auth?.pass];
    const reply = e.response
      ? scrub(e.response.replace(/\s+/g, ' ').trim().slice(0, 200), secrets)
      : undefined;
    const what = reply ? `SMTP server replied "${reply}"` : scrub(e.message ?? 'unknown error', secrets);
    const permanent = e.code === 'EAUTH' || (e.responseCode !== undefined && e.responseCode >= 500);
    const hint =
      e.code === 'EAUTH'
        ? 'Check the SMTP user and password of this channel.'
        : e.code === 'ETLS' || /certificate|TLS/i.test(e.message ?? '')
          ? 'Check the TLS settings (secure/starttls, tls.ca) against what the SMTP server offers.'
          : e.code === 'EENVELOPE'
            ? 'Check the from and to addresses: the SMTP server refused them.'
            : permanent
              ? 'The SMTP server refused the message: check the channel settings.'
              : 'Check that the SMTP server is up and reachable from the hub; delivery is retried.';
    return new CertfleetError(
      'NOTIFY_FAILED',
      `email channel "${this.name}" could not send via ${c.host}:${c.port}: ${what}${e.code ? ` (${e.code})` : ''}`,
      hint,
      {
        details: {
          channel: this.name,
          channelKind: this.kind,
          smtpCode: e.responseCode,
          code: e.code,
          retryable: !permanent,
        },
      },
    );
  }
}

export const emailNotifier: NotifierFactory<EmailConfig> = {
  schema: emailConfigSchema,
  create: (config) => new EmailNotifier(config),
};
