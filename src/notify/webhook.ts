import { createHmac } from 'node:crypto';
import { z } from 'zod';
import type { Alert } from './alert.ts';
import { postToChannel } from './http-post.ts';
import type { Notifier, NotifierFactory } from './notifier.ts';

export const webhookConfigSchema = z
  .object({
    kind: z.literal('webhook'),
    name: z.string().min(1).optional(),
    url: z.url({ protocol: /^https?$/ }),
    /** When set, the raw body is signed with HMAC-SHA256 so the receiver can prove the alert came from us. */
    secret: z.string().min(16).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    timeoutMs: z.number().int().positive().max(120_000).default(10_000),
  })
  .strict();
export type WebhookConfig = z.infer<typeof webhookConfigSchema>;

export const SIGNATURE_HEADER = 'x-certfleet-signature';
export const TIMESTAMP_HEADER = 'x-certfleet-timestamp';

/** `sha256=<hex>` over the exact bytes sent; receivers recompute it over the raw body they received. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** POSTs the alert as JSON. */
export class WebhookNotifier implements Notifier {
  readonly kind = 'webhook';
  readonly name: string;
  constructor(
    private readonly config: WebhookConfig,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.name = config.name ?? 'webhook';
  }

  async send(alert: Alert, signal?: AbortSignal): Promise<void> {
    const body = JSON.stringify(alert);
    const headers: Record<string, string> = {
      ...this.config.headers,
      'content-type': 'application/json',
      'user-agent': 'certfleet-notifier',
      [TIMESTAMP_HEADER]: String(Math.floor(this.now().getTime() / 1000)),
    };
    if (this.config.secret) headers[SIGNATURE_HEADER] = signBody(this.config.secret, body);
    await postToChannel({
      kind: this.kind,
      name: this.name,
      url: this.config.url,
      body,
      headers,
      timeoutMs: this.config.timeoutMs,
      // Custom headers usually carry tokens (Authorization: Bearer ...).
      secrets: [this.config.secret, ...Object.values(this.config.headers ?? {})],
      signal,
    });
  }
}

export const webhookNotifier: NotifierFactory<WebhookConfig> = {
  schema: webhookConfigSchema,
  create: (config) => new WebhookNotifier(config),
};
