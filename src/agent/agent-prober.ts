/**
 * Probes from the endpoint's side: the targets the hub cannot reach (marked `from: agent | both` on the endpoint)
 * are probed by the agent with the hub's own probe engine (src/probe/), on the interval the desired state gives and
 * shortly after each deploy the agent finishes, and reported to the hub (`POST /agent/probe-results`), which judges
 * deployments on them. Results are observations, not transitions: one that cannot be sent is dropped (logged), and
 * the next round replaces it.
 */
import type { Logger } from '../core/log.ts';
import { errorMessage } from '../core/errors.ts';
import type { ProbeTarget } from '../core/types.ts';
import type { DesiredState } from '../protocol/wire.ts';
import { observationOf } from '../probe/probe-targets.ts';
import type { AgentClient } from './agent-client.ts';

/** Few targets per endpoint: a handful in flight is plenty and keeps the endpoint's own load negligible. */
const CONCURRENCY = 8;

export interface AgentProberOptions {
  client: () => AgentClient | undefined;
  /** The hub CA root the agent pins (the hub's internal CA issues some endpoints' certificates). */
  caPem: string;
  logger: Logger;
  signal: AbortSignal;
  /** After a round was reported (tests, logs). */
  onReported?: (count: number) => void;
}

export class AgentProber {
  private settings?: NonNullable<DesiredState['probes']>;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;

  constructor(private readonly opts: AgentProberOptions) {
    opts.signal.addEventListener('abort', () => clearTimeout(this.timer), { once: true });
  }

  /** Takes the targets and interval of a new desired state; a change of targets probes soon. */
  update(probes: DesiredState['probes']): void {
    const changed = JSON.stringify(probes?.targets ?? []) !== JSON.stringify(this.settings?.targets ?? []);
    this.settings = probes;
    if (!probes) {
      clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    if (changed) this.probeSoon(0);
    else if (!this.timer && !this.running) this.schedule(probes.intervalSeconds * 1000);
  }

  /** Probes after `delayMs` (after a reload: the server's new workers need a moment), then on the interval. */
  probeSoon(delayMs: number): void {
    if (!this.settings || this.opts.signal.aborted) return;
    this.schedule(delayMs);
  }

  /** Resolves when no round is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.round();
    }, ms);
    this.timer.unref();
  }

  private round(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        const settings = this.settings;
        if (!settings || this.opts.signal.aborted) return;
        await this.probeAndReport(settings.targets, settings.timeoutMs);
      } while (this.again);
    })()
      .catch((e) => this.opts.logger.error({ err_message: errorMessage(e) }, 'agent probe round failed'))
      .finally(() => {
        this.running = undefined;
        if (this.settings && !this.opts.signal.aborted && !this.timer)
          this.schedule(this.settings.intervalSeconds * 1000);
      });
    return this.running;
  }

  private async probeAndReport(targets: ProbeTarget[], timeoutMs: number): Promise<void> {
    // loaded on first use, like the deploy pipeline: agents without such targets never pay for it
    const { probeMany } = await import('../probe/probe-many.ts');
    const results = await probeMany(targets, {
      trustedRootPems: [this.opts.caPem],
      useSystemRoots: true,
      timeoutMs,
      concurrency: CONCURRENCY,
      signal: this.opts.signal,
    });
    if (this.opts.signal.aborted) return;
    // one result per target, in target order (allAddresses is off)
    const observations = results.map((r, i) => observationOf(targets[i], r));
    const client = this.opts.client();
    if (!client) return;
    try {
      await client.probeResults(observations, { signal: this.opts.signal });
      this.opts.logger.debug({ targets: observations.length }, 'probe results reported');
      this.opts.onReported?.(observations.length);
    } catch (e) {
      if (this.opts.signal.aborted) return;
      this.opts.logger.warn(
        { err_message: errorMessage(e), targets: observations.length },
        'could not report probe results; the next round replaces them',
      );
    }
  }
}
