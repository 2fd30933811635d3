/**
 * Agent request nonces kept in the store, for hubs that share one (PostgreSQL): a signed request replayed to any
 * hub of the cluster within the signature window is refused. The single hub on SQLite keeps them in memory
 * (nonce-cache.ts); the leader purges expired rows here.
 */
import { errorMessage } from '../../core/errors.ts';
import type { HubContext } from '../hub-context.ts';

/** Where nonces are remembered: false when the key was seen within the window (a replay). */
export interface NonceLedger {
  remember(key: string, now: number): boolean | Promise<boolean>;
}

/** Nonces per statement at most (a burst of a few thousand agents' requests is a few statements). */
const MAX_BATCH = 1000;

interface Asked {
  key: string;
  expiresAt: string;
  resolve: (fresh: boolean) => void;
  reject: (e: unknown) => void;
}

/**
 * Nonces in the store, recorded in groups: a request arriving while a group is being written waits for the next,
 * which takes everything that arrived meanwhile in one statement. When a renewal wakes thousands of agents, their
 * requests cost a few round trips to PostgreSQL instead of one each, and a lone request is written at once (no
 * timer). Each caller is answered only after the statement holding its nonce ran; a failed statement fails the
 * requests of its group only. Two requests with one nonce in one group: the first is fresh, the second a replay.
 */
export class StoreNonceLedger implements NonceLedger {
  private queue: Asked[] = [];
  private writing = false;

  constructor(
    private readonly ctx: Pick<HubContext, 'store'>,
    private readonly windowMs: number,
  ) {}

  remember(key: string, now: number): Promise<boolean> {
    // A timestamp up to one window ahead stays acceptable until one window after it: keep the key that long.
    const expiresAt = new Date(now + 2 * this.windowMs).toISOString();
    return new Promise((resolve, reject) => {
      this.queue.push({ key, expiresAt, resolve, reject });
      if (!this.writing) void this.write();
    });
  }

  private async write(): Promise<void> {
    this.writing = true;
    while (this.queue.length) {
      const group = this.queue.splice(0, MAX_BATCH);
      try {
        const recorded = await this.ctx.store.rememberNonces(group);
        for (const asked of group) asked.resolve(recorded.delete(asked.key));
      } catch (e) {
        for (const asked of group) asked.reject(e);
      }
    }
    this.writing = false;
  }
}

/** The leader's job: delete expired nonces every `everyMs`. */
export class NoncePurge {
  readonly name = 'nonce purge';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly ctx: Pick<HubContext, 'store' | 'clock' | 'logger'>,
    private readonly everyMs = 60_000,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.running ??= this.ctx.store
        .purgeNonces(this.ctx.clock.now().toISOString())
        .then(
          () => undefined,
          (e) => this.ctx.logger.warn({ err: errorMessage(e) }, 'purging expired agent nonces failed'),
        )
        .finally(() => (this.running = undefined));
    }, this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
