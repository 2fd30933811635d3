import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../core/errors.ts';
import type { HubContext } from '../hub/hub-context.ts';
import { META } from '../store/meta-catalogue.ts';
import { createBackup } from './create-backup.ts';
import { verifyBackup } from './restore-backup.ts';

/** The `backup:` section of the hub config: scheduled backups, each verified right after it is written. */
export const backupHubConfigShape = {
  backup: z
    .strictObject({
      directory: z.string().min(1),
      /** age public keys (`age1...`); the identities that open the backups live elsewhere, never on the hub. */
      recipients: z.array(z.string().startsWith('age1')).min(1),
      intervalMinutes: z.number().positive().default(1440),
      /** How many verified backups to keep in `directory` (older ones are deleted). */
      retention: z.number().int().min(1).default(7),
      /** The backup alert fires when no backup has been verified for this long (default: twice the interval). */
      alertAfterMinutes: z.number().positive().optional(),
    })
    .optional(),
};
export type BackupConfig = NonNullable<z.output<(typeof backupHubConfigShape)['backup']>>;

/** The maximum age of the last verified backup before the backup alert fires. */
export const backupMaxAgeMs = (c: BackupConfig) => (c.alertAfterMinutes ?? 2 * c.intervalMinutes) * 60_000;

const FILE = /^certfleet-backup-.+\.age$/;

export interface ScheduledBackup {
  file: string;
  ok: boolean;
  error?: string;
}

/**
 * Scheduled backups. Due-ness is decided on the injected clock (`runDue`, which tests call directly); the loop
 * only ticks on a real timer. Each backup is encrypted to the configured recipients and to a one-off X25519
 * identity made for this run and forgotten after it: with it the hub proves right away that the file on disk
 * decrypts and restores (age's header MAC covers every recipient's stanza) without holding any key that opens a
 * backup. The result is kept in store meta (`backup.last_verified_at`, `backup.last_failure`): metrics and the
 * backup alert read it there.
 */
export class BackupScheduler {
  private timer?: NodeJS.Timeout;
  private running?: Promise<ScheduledBackup>;
  private lastAttemptAt?: number;
  private stopped = false;

  constructor(
    private readonly ctx: HubContext,
    readonly config: BackupConfig,
    private readonly opts: {
      dataDir: string;
      env: NodeJS.ProcessEnv;
      hubConfigPath?: string;
      onFailure?: () => void;
      tickMs?: number;
    },
  ) {}

  start(): void {
    this.stopped = false;
    const tick = this.opts.tickMs ?? Math.min(60_000, this.config.intervalMinutes * 60_000);
    const loop = (ms: number) => {
      this.timer = setTimeout(() => {
        void this.runDue().finally(() => {
          if (!this.stopped) loop(tick);
        });
      }, ms);
      this.timer.unref();
    };
    loop(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Takes a backup when the interval has passed since the last verified one (or the last attempt). */
  async runDue(): Promise<ScheduledBackup | undefined> {
    const last = await this.ctx.store.getMeta(META.backupLastVerified.key);
    const since = Math.max(last ? Date.parse(last) : -Infinity, this.lastAttemptAt ?? -Infinity);
    if (this.ctx.clock.now().getTime() - since < this.config.intervalMinutes * 60_000) return undefined;
    return this.runOnce();
  }

  /** One backup: write, verify, record, prune. Never throws; overlapping calls share the run. */
  runOnce(): Promise<ScheduledBackup> {
    this.running ??= this.backup().finally(() => (this.running = undefined));
    return this.running;
  }

  private async backup(): Promise<ScheduledBackup> {
    const { store, clock, logger } = this.ctx;
    const now = clock.now();
    this.lastAttemptAt = now.getTime();
    const file = join(
      this.config.directory,
      `certfleet-backup-${now.toISOString().replace(/[:.]/g, '-')}.age`,
    );
    try {
      await mkdir(this.config.directory, { recursive: true, mode: 0o700 });
      const identity = await generateX25519Identity();
      const { manifest } = await createBackup({
        dataDir: this.opts.dataDir,
        out: file,
        sealTo: { recipients: [...this.config.recipients, await identityToRecipient(identity)] },
        ...(this.opts.hubConfigPath ? { hubConfigPath: this.opts.hubConfigPath } : {}),
        env: this.opts.env,
        clock,
        logger,
      });
      const { report } = await verifyBackup({ file, using: { identities: [identity] }, logger });
      if (!report.ok) {
        const failed = report.rows.filter((r) => !r.ok);
        throw new Error(`verification failed: ${failed.map((r) => `${r.key}: ${r.detail}`).join('; ')}`);
      }
      await store.setMeta(META.backupLastVerified.key, clock.now().toISOString());
      logger.info(
        { file, certificates: manifest.counts.certificates },
        'scheduled backup written and verified',
      );
      await this.prune();
      return { file, ok: true };
    } catch (e) {
      const error = errorMessage(e);
      logger.error({ file, err: error }, 'scheduled backup failed');
      // an unverified file must not pass for a backup
      await rm(file, { force: true }).catch(() => undefined);
      this.opts.onFailure?.();
      await store
        .setMeta(META.backupLastFailure.key, JSON.stringify({ at: now.toISOString(), error }))
        .catch((err: unknown) =>
          logger.error({ err: errorMessage(err) }, 'cannot record the backup failure'),
        );
      return { file, ok: false, error };
    }
  }

  /** Keeps the newest `retention` backups (names sort by time). */
  private async prune(): Promise<void> {
    const files = (await readdir(this.config.directory)).filter((f) => FILE.test(f)).sort();
    for (const f of files.slice(0, Math.max(0, files.length - this.config.retention))) {
      await rm(join(this.config.directory, f), { force: true });
    }
  }
}
