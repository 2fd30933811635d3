import type { z } from 'zod';
import { CertfleetError } from '../core/errors.ts';
import type { Alert } from './alert.ts';

/**
 * A channel alerts are delivered to. Contract: `send` resolves once the receiver accepted the alert and
 * rejects with a CertfleetError (code NOTIFY_FAILED, `details.retryable` telling whether another attempt can
 * help) that names the channel and the receiver's answer, never a secret. It honours `signal` by rejecting with
 * the signal's reason. Safe to call concurrently; it keeps no state between calls.
 */
export interface Notifier {
  readonly kind: string;
  readonly name: string;
  send(alert: Alert, signal?: AbortSignal): Promise<void>;
  /** Optional: releases pooled connections (email); called once at shutdown, a later send reopens. */
  close?(): void | Promise<void>;
}

/** Builds one kind of notifier from its validated config. */
export interface NotifierFactory<
  C extends { kind: string; name?: string } = { kind: string; name?: string },
> {
  schema: z.ZodType<C>;
  create(config: C): Notifier;
}

/** Explicit registry keyed by the config's `kind`; the composition root registers the channels it offers. */
export class NotifierRegistry {
  private readonly factories = new Map<string, NotifierFactory>();

  register<C extends { kind: string; name?: string }>(kind: string, factory: NotifierFactory<C>): this {
    if (this.factories.has(kind)) throw new Error(`notifier kind "${kind}" is registered twice`);
    this.factories.set(kind, factory as unknown as NotifierFactory);
    return this;
  }

  kinds(): string[] {
    return [...this.factories.keys()].sort();
  }

  /** Validates one channel config (`{ kind, name?, ... }`) and builds its notifier. */
  create(config: unknown, where = 'notify.channels'): Notifier {
    const kind = (config as { kind?: unknown } | null)?.kind;
    const factory = typeof kind === 'string' ? this.factories.get(kind) : undefined;
    if (!factory) {
      throw new CertfleetError(
        'CONFIG_INVALID',
        `${where}: unknown channel kind ${JSON.stringify(kind ?? null)}`,
        `Use one of: ${this.kinds().join(', ')}.`,
      );
    }
    const parsed = factory.schema.safeParse(config);
    if (!parsed.success) {
      // Zod messages name the path and the expected type, never the received value (which may be a secret).
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
      throw new CertfleetError(
        'CONFIG_INVALID',
        `${where}: invalid ${kind} channel: ${problems.join('; ')}`,
        `Fix the ${kind} channel settings in the configuration file.`,
      );
    }
    return factory.create(parsed.data);
  }

  /** Builds every channel, refusing two channels with the same name (names key stats and events). */
  createAll(configs: unknown[], where = 'notify.channels'): Notifier[] {
    const out = configs.map((c, i) => this.create(c, `${where}[${i}]`));
    const seen = new Set<string>();
    for (const n of out) {
      if (seen.has(n.name)) {
        throw new CertfleetError(
          'CONFIG_INVALID',
          `${where}: two channels are named "${n.name}"`,
          'Give each channel a unique `name`.',
        );
      }
      seen.add(n.name);
    }
    return out;
  }
}
