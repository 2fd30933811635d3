import { z } from 'zod';
import { headline, type Alert } from './alert.ts';
import { postToChannel } from './http-post.ts';
import type { Notifier, NotifierFactory } from './notifier.ts';

export const slackConfigSchema = z
  .object({
    kind: z.literal('slack'),
    name: z.string().min(1).optional(),
    /** The incoming-webhook URL. Its path is the credential: it is never shown in errors or logs. */
    url: z.url({ protocol: /^https?$/ }),
    timeoutMs: z.number().int().positive().max(120_000).default(10_000),
  })
  .strict();
export type SlackConfig = z.infer<typeof slackConfigSchema>;

/** Slack mrkdwn treats these three as control characters. */
function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function emojiFor(alert: Alert): string {
  if (alert.kind === 'test') return ':information_source:';
  if (alert.status === 'resolved') return ':white_check_mark:';
  return alert.severity === 'critical' ? ':rotating_light:' : ':warning:';
}

/** The incoming-webhook payload: `text` is the notification fallback, `blocks` the rendered message. */
export function slackPayload(alert: Alert): { text: string; blocks: unknown[] } {
  const emoji = emojiFor(alert);
  const head = `${emoji} ${headline(alert)}`;
  const facts = [
    `*kind* ${esc(alert.kind)}`,
    alert.subject.certificate ? `*certificate* ${esc(alert.subject.certificate)}` : '',
    alert.subject.endpoint ? `*endpoint* ${esc(alert.subject.endpoint)}` : '',
    `*at* ${esc(alert.at)}`,
  ].filter(Boolean);
  return {
    text: esc(`[certfleet] ${head}`),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: head.slice(0, 150), emoji: true } },
      { type: 'section', text: { type: 'mrkdwn', text: esc(alert.message).slice(0, 3000) } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: facts.join('  ·  ') }] },
    ],
  };
}

export class SlackNotifier implements Notifier {
  readonly kind = 'slack';
  readonly name: string;
  constructor(private readonly config: SlackConfig) {
    this.name = config.name ?? 'slack';
  }

  async send(alert: Alert, signal?: AbortSignal): Promise<void> {
    await postToChannel({
      kind: this.kind,
      name: this.name,
      url: this.config.url,
      body: JSON.stringify(slackPayload(alert)),
      headers: { 'content-type': 'application/json', 'user-agent': 'certfleet-notifier' },
      timeoutMs: this.config.timeoutMs,
      signal,
    });
  }
}

export const slackNotifier: NotifierFactory<SlackConfig> = {
  schema: slackConfigSchema,
  create: (config) => new SlackNotifier(config),
};
