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

export class StoreNonceLedger implements NonceLedger {
  constructor(
    private readonly ctx: Pick<HubContext, 'store'>,
    private readonly windowMs: number,
  ) {}

  remember(key: string, now: number): Promise<boolean> {
    // A timestamp up to one window ahead stays acceptable until one window after it: keep the key that long.
    return this.ctx.store.rememberNonce(key, new Date(now + 2 * this.windowMs).toISOString());
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
