import type { Deployment } from '../../core/types.ts';
import {
  DeploymentTransitionRefused,
  type DeploymentTransitionInput,
  type Store,
} from '../../store/store.ts';

/** Batches retried without the requests holding refused moves, before falling back to one transaction each. */
const MAX_BATCH_ATTEMPTS = 3;

interface Pending {
  items: DeploymentTransitionInput[];
  resolve: (d: Deployment[]) => void;
  reject: (e: unknown) => void;
}

/**
 * The one place agent reports become deployment transitions. Reports arriving within `windowMs` of each other are
 * written in one `transitionDeployments` transaction (each still its own transition + event), so the reports of a
 * thousand agents woken by one renewal cost a few commits instead of a thousand. `write` resolves only after the
 * batch holding its items committed: the route answers the agent after its report is durable, never before.
 *
 * A request is all or nothing. When the lifecycle table refuses one of its moves (409, recorded by the store as
 * `deployment.transition_refused`), that request fails and the others are written again without it; an agent that
 * sent a batch then resends its reports one by one, so its legal reports land and only the refused one is set
 * aside. If a batch fails otherwise, each request's items are retried in their own transaction, so one bad report
 * fails only the request that sent it. Subscribers of `store.events` get one `deployment.transitioned` per item
 * after the commit.
 */
export class ReportWriter {
  private queue: Pending[] = [];
  private queued = 0;
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly windowMs = 10,
    private readonly maxBatch = 1000,
  ) {}

  write(items: DeploymentTransitionInput[]): Promise<Deployment[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.queued += items.length;
      if (this.queued >= this.maxBatch) this.flushSoon(0);
      else this.flushSoon(this.windowMs);
    });
  }

  /** Writes everything queued now; resolves once it committed (shutdown, tests). */
  async drain(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(() => this.flush());
    await this.flushing;
  }

  private flushSoon(ms: number): void {
    if (this.timer && ms > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Batches are written one after another: a batch fills while the previous one commits.
      this.flushing = this.flushing.then(() => this.flush());
    }, ms);
  }

  private async flush(): Promise<void> {
    let batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.queued = 0;
    const store = this.store;
    for (let attempt = 0; attempt < MAX_BATCH_ATTEMPTS && batch.length; attempt++) {
      try {
        const written = await store.transitionDeployments(batch.flatMap((p) => p.items));
        let at = 0;
        for (const p of batch) {
          p.resolve(written.slice(at, at + p.items.length));
          at += p.items.length;
        }
        return;
      } catch (e) {
        // A refused move (recorded once by the store) fails only the request that sent it; the rest go again.
        const refused =
          e instanceof DeploymentTransitionRefused && batch.find((p) => p.items.includes(e.input));
        if (!refused) break;
        refused.reject(e);
        batch = batch.filter((p) => p !== refused);
      }
    }
    for (const p of batch) {
      await store.transitionDeployments(p.items).then(p.resolve, p.reject);
    }
  }
}
