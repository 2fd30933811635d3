/**
 * The jobs only one hub of a cluster may run (planner and issuance, probe scheduler, alert evaluation, scheduled
 * backups, connector deploys, housekeeping): started when this hub gains leadership, stopped when it loses it.
 * Every hub serves the API, the dashboard and agents whatever its role. On SQLite there is one hub per store, so
 * it always leads; on PostgreSQL the leader lease (src/store/postgres/leader-lease.ts) elects one.
 */
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { LeaderLease } from '../store/postgres/leader-lease.ts';

/** A job of the leader. Contract: `stop` aborts its work in flight and resolves once that settled; `start` may follow. */
export interface LeaderJob {
  readonly name: string;
  start(): void;
  stop(): Promise<void>;
}

/** Decides whether this hub leads; tells every gain and loss to `onChange` (a loss at once, before any cleanup). */
export interface LeaderElection {
  start(onChange: (leading: boolean) => void): Promise<void>;
  stop(): Promise<void>;
}

/** One hub per store (SQLite): always the leader. */
export const soleHub: LeaderElection = {
  async start(onChange) {
    onChange(true);
  },
  async stop() {},
};

/** The session advisory lock of the hubs on one PostgreSQL database. */
export function leaseElection(
  databaseUrl: string,
  opts: { logger: Logger; checkIntervalMs?: number },
): LeaderElection {
  let lease: LeaderLease | undefined;
  return {
    async start(onChange) {
      lease = new LeaderLease(databaseUrl, { ...opts, onChange });
      await lease.start();
    },
    async stop() {
      await lease?.stop();
    },
  };
}

export class LeaderJobs {
  private leading = false;
  /** Whether the jobs were last started (true) or stopped (false); `leading` may already say a loss. */
  private running = false;
  private changes: Promise<void> = Promise.resolve();

  constructor(
    private readonly election: LeaderElection,
    private readonly jobs: readonly LeaderJob[],
    private readonly logger: Logger,
  ) {}

  private shuttingDown = false;

  /** Whether this hub leads now (false from the moment a loss is known, while its jobs are still stopping). */
  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts the election; resolves after its first decision (a sole hub leads before this returns). */
  async start(): Promise<void> {
    await this.election.start((leading) => void this.set(leading));
    await this.changes;
    if (!this.leading)
      this.logger.info('leader: another hub leads; this hub serves the API, the dashboard and agents');
  }

  /** Hub shutdown: gives leadership up (another hub takes it at its next try) and stops the jobs. */
  async stop(): Promise<void> {
    this.shuttingDown = true;
    await this.election.stop();
    await this.set(false);
  }

  /** Changes apply one after another: jobs are started again only once the previous stop has settled. */
  private set(leading: boolean): Promise<void> {
    if (!leading) this.leading = false;
    this.changes = this.changes.then(() => this.apply(leading));
    return this.changes;
  }

  private async apply(leading: boolean): Promise<void> {
    if (leading === this.running) return;
    this.running = leading;
    if (leading) {
      this.leading = true;
      for (const job of this.jobs) {
        try {
          job.start();
        } catch (e) {
          this.logger.error({ job: job.name, err: errorMessage(e) }, 'leader job failed to start');
        }
      }
      this.logger.info(
        { jobs: this.jobs.map((j) => j.name) },
        'leader: this hub now leads and runs the leader jobs',
      );
      return;
    }
    // losing the lease while running deserves a warning; giving it up at shutdown is routine
    this.logger[this.shuttingDown ? 'info' : 'warn'](
      { jobs: this.jobs.map((j) => j.name) },
      this.shuttingDown
        ? 'leader: shutting down; stopping the leader jobs'
        : 'leader: this hub no longer leads; stopping the leader jobs',
    );
    const results = await Promise.allSettled(this.jobs.map((j) => j.stop()));
    results.forEach((r, i) => {
      if (r.status === 'rejected')
        this.logger.error(
          { job: this.jobs[i].name, err: errorMessage(r.reason) },
          'leader job failed to stop',
        );
    });
  }
}
