import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import type { Clock } from '../core/clock.ts';
import { CertfleetError, errorMessage, isCertfleetError } from '../core/errors.ts';
import { ALERT_KINDS, ALERT_SEVERITIES, urgencyOf, type Alert } from './alert.ts';
import type { Notifier } from './notifier.ts';

export interface AlertEvent {
  kind: string;
  subject: string;
  data: Record<string, unknown>;
}

/** pino's Logger fits; snake_case keys, never a secret. */
export interface AlertLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface AlertManagerOptions {
  notifiers: Notifier[];
  clock: Clock;
  /** Every fired, escalated, renotified, resolved alert and every delivery that failed after retries. */
  recordEvent: (e: AlertEvent) => Promise<void>;
  /** Attempts per channel per message (first try included) and the first backoff delay, doubled each time. */
  retry?: { attempts: number; baseDelayMs: number; maxDelayMs?: number };
  /** Send a still-firing alert again after this long (unset: never, only escalations re-notify). */
  renotifyAfterMs?: number;
  /** A channel that failed an alert after all retries gets it again on a later evaluate, no sooner than this. */
  redeliverAfterMs?: number;
  logger?: AlertLogger;
}

export type NotifyReason = 'fired' | 'escalated' | 'renotified' | 'redelivered' | 'resolved';

export interface DeliveryResult {
  channel: string;
  kind: string;
  ok: boolean;
  attempts: number;
  ms: number;
  error?: { code: string; message: string; hint: string };
}

export interface EvaluateResult {
  notified: Array<{ reason: NotifyReason; alert: Alert; deliveries: DeliveryResult[] }>;
  /** Conditions firing after this evaluation. */
  active: number;
}

export interface ChannelStats {
  kind: string;
  delivered: number;
  failed: number;
  retries: number;
  lastDeliveredAt?: string;
  lastFailedAt?: string;
  lastError?: string;
}

const activeEntrySchema = z.object({
  alert: z.object({
    key: z.string(),
    kind: z.enum(ALERT_KINDS),
    severity: z.enum(ALERT_SEVERITIES),
    status: z.enum(['firing', 'resolved']),
    title: z.string(),
    message: z.string(),
    subject: z.object({ certificate: z.string().optional(), endpoint: z.string().optional() }),
    at: z.string(),
    level: z.number().optional(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
  firstFiredAt: z.string(),
  notifiedLevel: z.number(),
  lastNotifiedAt: z.string(),
  /** Channels that did not get the last notification; retried after `redeliverAt`. */
  undelivered: z.array(z.string()),
  redeliverAt: z.string().optional(),
});
type ActiveEntry = z.infer<typeof activeEntrySchema>;

export const alertManagerStateSchema = z.object({
  version: z.literal(1),
  active: z.array(activeEntrySchema),
});
/** What the hub persists between restarts so a restart neither re-sends nor forgets firing alerts. */
export type AlertManagerState = z.infer<typeof alertManagerStateSchema>;

interface Job {
  reason: NotifyReason;
  alert: Alert;
  channels: Notifier[];
  deliveries: DeliveryResult[];
}

/**
 * Turns "what is firing now" into notifications: once per new condition, again on escalation (or after
 * `renotifyAfterMs`), once when it clears. Channels are delivered to in parallel and each retries with
 * exponential backoff on its own, so a failing channel never delays or blocks the others. Evaluations are
 * serialized. Delivery is at-least-once: an evaluation aborted midway is repeated whole by the next one.
 */
export class AlertManager {
  private readonly notifiers: Notifier[];
  private readonly clock: Clock;
  private readonly recordEvent: (e: AlertEvent) => Promise<void>;
  private readonly retry: { attempts: number; baseDelayMs: number; maxDelayMs: number };
  private readonly renotifyAfterMs?: number;
  private readonly redeliverAfterMs: number;
  private readonly logger?: AlertLogger;
  private active = new Map<string, ActiveEntry>();
  private readonly channelStats = new Map<string, ChannelStats>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: AlertManagerOptions) {
    const names = new Set<string>();
    for (const n of opts.notifiers) {
      if (names.has(n.name)) {
        throw new CertfleetError(
          'CONFIG_INVALID',
          `two alert channels are named "${n.name}"`,
          'Give each channel a unique name.',
        );
      }
      names.add(n.name);
      this.channelStats.set(n.name, { kind: n.kind, delivered: 0, failed: 0, retries: 0 });
    }
    this.notifiers = opts.notifiers;
    this.clock = opts.clock;
    this.recordEvent = opts.recordEvent;
    this.retry = {
      attempts: Math.max(1, opts.retry?.attempts ?? 4),
      baseDelayMs: opts.retry?.baseDelayMs ?? 1_000,
      maxDelayMs: opts.retry?.maxDelayMs ?? 60_000,
    };
    this.renotifyAfterMs = opts.renotifyAfterMs;
    this.redeliverAfterMs = opts.redeliverAfterMs ?? 5 * 60_000;
    this.logger = opts.logger;
  }

  /** Compares `firing` with the active set and sends what changed. Resolves once every delivery settled. */
  evaluate(firing: Alert[], signal?: AbortSignal): Promise<EvaluateResult> {
    const run = this.queue.then(() => this.evaluateNow(firing, signal));
    this.queue = run.catch(() => {});
    return run;
  }

  /** Sends a 'test' alert to every channel once (no retries) and reports each channel's outcome. */
  async sendTest(signal?: AbortSignal): Promise<DeliveryResult[]> {
    const now = this.clock.now();
    const alert: Alert = {
      key: 'test',
      kind: 'test',
      severity: 'warning',
      status: 'firing',
      title: 'certfleet test alert',
      message:
        'This is a test alert sent by `certfleet alerts test` to check that this channel works. No action is needed.',
      subject: {},
      at: now.toISOString(),
    };
    const results = await Promise.all(this.notifiers.map((n) => this.deliver(n, alert, 1, signal)));
    if (signal?.aborted) throw signal.reason;
    await this.record({
      kind: 'alert.test',
      subject: 'test',
      data: {
        results: results.map(({ channel, kind, ok, error }) => ({
          channel,
          kind,
          ok,
          error: error?.message,
        })),
      },
    });
    return results;
  }

  /** Releases the channels' pooled connections (SMTP); call at shutdown after the last evaluate. */
  async close(): Promise<void> {
    await this.queue;
    await Promise.allSettled(this.notifiers.map(async (n) => n.close?.()));
  }

  stats(): { active: number; channels: Record<string, ChannelStats> } {
    return {
      active: this.active.size,
      channels: Object.fromEntries([...this.channelStats].map(([k, v]) => [k, { ...v }])),
    };
  }

  /** Alerts firing now, as last evaluated (for the API and the dashboard). */
  activeAlerts(): Alert[] {
    return [...this.active.values()].map((e) => ({ ...structuredClone(e.alert), since: e.firstFiredAt }));
  }

  exportState(): AlertManagerState {
    return { version: 1, active: [...this.active.values()].map((e) => structuredClone(e)) };
  }

  /** Restores a state from exportState(); channels no longer configured are dropped from `undelivered`. */
  importState(state: unknown): void {
    const parsed = alertManagerStateSchema.safeParse(state);
    if (!parsed.success) {
      throw new CertfleetError(
        'VALIDATION_FAILED',
        'the saved alert state is not valid',
        'Delete the saved alert state; firing alerts are notified again on the next evaluation.',
      );
    }
    const names = new Set(this.notifiers.map((n) => n.name));
    this.active = new Map(
      parsed.data.active.map((e) => [
        e.alert.key,
        { ...e, undelivered: e.undelivered.filter((c) => names.has(c)) },
      ]),
    );
  }

  private async evaluateNow(firing: Alert[], signal?: AbortSignal): Promise<EvaluateResult> {
    signal?.throwIfAborted();
    const now = this.clock.now();
    const nowIso = now.toISOString();
    const incoming = new Map<string, Alert>();
    for (const a of firing) {
      const prev = incoming.get(a.key);
      if (!prev || urgencyOf(a) > urgencyOf(prev)) incoming.set(a.key, { ...a, status: 'firing' });
    }

    const jobs: Job[] = [];
    const job = (reason: NotifyReason, alert: Alert, channels = this.notifiers) =>
      jobs.push({ reason, alert, channels, deliveries: [] });
    for (const [key, alert] of incoming) {
      const entry = this.active.get(key);
      if (!entry) {
        job('fired', alert);
        continue;
      }
      const urgency = urgencyOf(alert);
      const sinceNotified = now.getTime() - Date.parse(entry.lastNotifiedAt);
      if (urgency > entry.notifiedLevel) job('escalated', alert);
      else if (this.renotifyAfterMs !== undefined && sinceNotified >= this.renotifyAfterMs)
        job('renotified', alert);
      else if (
        entry.undelivered.length > 0 &&
        entry.redeliverAt &&
        now.getTime() >= Date.parse(entry.redeliverAt)
      ) {
        job(
          'redelivered',
          alert,
          this.notifiers.filter((n) => entry.undelivered.includes(n.name)),
        );
      } else {
        // Unchanged: de-duplicated. Keep the newest wording; a de-escalation lowers the bar for re-escalating.
        entry.alert = alert;
        entry.notifiedLevel = Math.min(entry.notifiedLevel, urgency);
      }
    }
    for (const [key, entry] of this.active) {
      if (incoming.has(key)) continue;
      job('resolved', {
        ...entry.alert,
        status: 'resolved',
        at: nowIso,
        message:
          `Resolved: no longer firing as of ${nowIso} (it started at ${entry.firstFiredAt}). ` +
          `It was: ${entry.alert.message}`,
      });
    }

    // One sequential queue per channel (keeps fired-before-resolved order), all channels in parallel.
    await Promise.all(
      this.notifiers.map(async (n) => {
        let down = false;
        for (const j of jobs) {
          if (!j.channels.includes(n)) continue;
          // After one message exhausted its retries, this round gives the channel one try per message.
          const r = await this.deliver(n, j.alert, down ? 1 : this.retry.attempts, signal);
          if (!r.ok) down = true;
          j.deliveries.push(r);
        }
      }),
    );
    if (signal?.aborted) throw signal.reason;
    // Report in configuration order, whatever order the channels finished in.
    const order = (d: DeliveryResult) => this.notifiers.findIndex((n) => n.name === d.channel);
    for (const j of jobs) j.deliveries.sort((a, b) => order(a) - order(b));

    for (const j of jobs) {
      const failed = j.deliveries.filter((d) => !d.ok).map((d) => d.channel);
      const key = j.alert.key;
      if (j.reason === 'resolved') {
        this.active.delete(key);
      } else if (j.reason === 'redelivered') {
        const entry = this.active.get(key)!;
        entry.alert = j.alert;
        entry.undelivered = failed;
        entry.redeliverAt = failed.length
          ? new Date(now.getTime() + this.redeliverAfterMs).toISOString()
          : undefined;
      } else {
        this.active.set(key, {
          alert: j.alert,
          firstFiredAt: this.active.get(key)?.firstFiredAt ?? nowIso,
          notifiedLevel: urgencyOf(j.alert),
          lastNotifiedAt: nowIso,
          undelivered: failed,
          redeliverAt: failed.length
            ? new Date(now.getTime() + this.redeliverAfterMs).toISOString()
            : undefined,
        });
      }
      await this.recordJob(j);
    }
    return {
      notified: jobs.map(({ reason, alert, deliveries }) => ({ reason, alert, deliveries })),
      active: this.active.size,
    };
  }

  private async recordJob(j: Job): Promise<void> {
    const a = j.alert;
    const deliveredTo = j.deliveries.filter((d) => d.ok).map((d) => d.channel);
    const failedChannels = j.deliveries.filter((d) => !d.ok).map((d) => d.channel);
    this.logger?.[failedChannels.length ? 'warn' : 'info'](
      {
        alert_key: a.key,
        alert_kind: a.kind,
        severity: a.severity,
        reason: j.reason,
        delivered_to: deliveredTo,
        failed_channels: failedChannels,
      },
      `alert ${j.reason}: ${a.title}`,
    );
    await this.record({
      kind: `alert.${j.reason}`,
      subject: a.key,
      data: {
        alertKind: a.kind,
        severity: a.severity,
        status: a.status,
        level: urgencyOf(a),
        title: a.title,
        message: a.message,
        certificate: a.subject.certificate,
        endpoint: a.subject.endpoint,
        deliveredTo,
        failedChannels,
      },
    });
    for (const d of j.deliveries) {
      if (d.ok) continue;
      await this.record({
        kind: 'alert.delivery_failed',
        subject: a.key,
        data: {
          channel: d.channel,
          channelKind: d.kind,
          attempts: d.attempts,
          alertStatus: a.status,
          reason: j.reason,
          error: d.error,
        },
      });
    }
  }

  private async record(e: AlertEvent): Promise<void> {
    try {
      await this.recordEvent(e);
    } catch (err) {
      // An unrecordable event must not stop alerting; the log still has it.
      this.logger?.error(
        { event_kind: e.kind, subject: e.subject, err: errorMessage(err) },
        'could not record alert event',
      );
    }
  }

  /** Sends one alert to one channel with exponential backoff; never throws except on abort. */
  private async deliver(
    n: Notifier,
    alert: Alert,
    attempts: number,
    signal?: AbortSignal,
  ): Promise<DeliveryResult> {
    const stats = this.channelStats.get(n.name)!;
    const started = Date.now();
    let last: unknown;
    let tried = 0;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) {
        stats.retries++;
        const wait = Math.min(this.retry.baseDelayMs * 2 ** (i - 1), this.retry.maxDelayMs);
        try {
          await delay(wait, undefined, { signal });
        } catch {
          break;
        }
      }
      if (signal?.aborted) break;
      tried++;
      try {
        await n.send(alert, signal);
        stats.delivered++;
        stats.lastDeliveredAt = this.clock.now().toISOString();
        return { channel: n.name, kind: n.kind, ok: true, attempts: tried, ms: Date.now() - started };
      } catch (e) {
        last = e;
        if (signal?.aborted) break;
        if (isCertfleetError(e) && e.details?.retryable === false) break;
      }
    }
    const error = isCertfleetError(last)
      ? { code: last.code, message: last.message, hint: last.hint }
      : signal?.aborted
        ? { code: 'ABORTED', message: `delivery to ${n.kind} channel "${n.name}" was cancelled`, hint: '' }
        : {
            code: 'NOTIFY_FAILED',
            // A foreign error may carry anything; only its class name is safe to show.
            message: `${n.kind} channel "${n.name}" failed (${(last as Error)?.name ?? 'error'})`,
            hint: 'Check the channel configuration and the receiver.',
          };
    stats.failed++;
    stats.lastFailedAt = this.clock.now().toISOString();
    stats.lastError = error.message;
    if (!signal?.aborted) {
      this.logger?.warn(
        { channel: n.name, channel_kind: n.kind, alert_key: alert.key, attempts: tried, err: error.message },
        'alert delivery failed',
      );
    }
    return { channel: n.name, kind: n.kind, ok: false, attempts: tried, ms: Date.now() - started, error };
  }
}
