/**
 * Emergency mass reissue: plan, start, follow, report. A campaign is state in the store (campaigns,
 * campaign_items, and a `reissueRequested` mark on each selected certificate), never a loop of its own that issues:
 * the planner is the one place renewal happens, and it sees each marked certificate due and urgent, so it reissues
 * within the CA's limits (ARI `replaces` where it applies) and resumes after a restart by reading the same state.
 * This service only watches: it asks for out-of-window reloads of new versions when the campaign says so, and
 * marks the campaign done once every new version is verified or failed on every subscribed endpoint.
 */
import { CertfleetError, errorMessage } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Actor, Campaign, CampaignOptions } from '../../store/store.ts';
import type { HubContext } from '../hub-context.ts';
import type { RenewalService } from '../renewal/renewal-service.ts';
import { storeChange, withCampaignRequest, withoutCampaignRequest } from '../renewal/renewal-state.ts';
import { planCampaign, type CampaignPlan } from './campaign-plan.ts';
import {
  campaignProgress,
  campaignReport,
  PROGRESS_COUNTS,
  type CampaignProgress,
} from './campaign-progress.ts';
import { selectCertificates, type SelectorInput } from './selection.ts';

export type CampaignSummary = Omit<Campaign, 'items'> & { certificates: number };

export interface CampaignView {
  campaign: CampaignSummary;
  progress: CampaignProgress;
}

export interface CampaignServiceOptions {
  /** Orders the planner runs at once (for the estimate). */
  concurrency: number;
  /** How often running campaigns are looked at (besides after each deployment change). */
  intervalMs?: number;
}

/** A look after a change waits this long, so a burst of changes costs one look. */
const NUDGE_MS = 200;
/** After a look that took T, the next waits at least this × T: following costs at most 1/(1 + this) of the time. */
const FOLLOW_QUIET_FACTOR = 4;

/** States in which a new version has not reloaded yet, so an out-of-window reload can still help. */
const BEFORE_RELOAD = new Set(['pending', 'delivered', 'installed', 'waiting_window']);

export class CampaignService {
  private timer?: NodeJS.Timeout;
  private soon?: NodeJS.Timeout;
  private running?: Promise<void>;
  private unsubscribe?: () => void;
  private watching = false;
  /** No look after a change before this instant (ms): see startWatching. */
  private quietUntil = 0;

  constructor(
    private readonly ctx: HubContext,
    private readonly renewal: RenewalService,
    private readonly opts: CampaignServiceOptions,
  ) {}

  async plan(input: SelectorInput): Promise<CampaignPlan> {
    return planCampaign(this.renewal, await selectCertificates(this.ctx, input), this.opts.concurrency);
  }

  /** Selects, then starts the campaign in one commit; the planner takes it from there. */
  async start(
    input: SelectorInput & Partial<CampaignOptions>,
    actor: Actor,
  ): Promise<{ view: CampaignView; plan: CampaignPlan }> {
    const selection = await selectCertificates(this.ctx, input);
    if (selection.certificates.length === 0)
      throw new CertfleetError(
        'NOT_FOUND',
        'no certificate matches the selection: nothing to reissue',
        'check the selector with `certfleet emergency reissue ... ` (it shows the plan before starting)',
      );
    const plan = await planCampaign(this.renewal, selection, this.opts.concurrency);
    const id = newId();
    const options: CampaignOptions = {
      rekey: input.rekey ?? false,
      overrideWindows: input.overrideWindows ?? false,
      reason: input.reason?.trim() || 'emergency reissue',
    };
    const now = this.ctx.clock.now();
    const campaign = await this.ctx.store.createCampaign(
      {
        id,
        selector: selection.selector,
        options,
        items: selection.certificates.map((s) => ({
          certificateId: s.certificate.id,
          ...(s.current ? { baselineVersionId: s.current.id } : {}),
        })),
      },
      storeChange(withCampaignRequest(id, `campaign ${id}: ${options.reason}`, now)),
      actor,
    );
    this.ctx.logger.warn(
      { campaign: id, certificates: campaign.items.length, selector: selection.selector.kind },
      'emergency campaign started',
    );
    // The planner hears of it through the store's `campaign.changed` event (from any hub) and runs at once.
    return { view: await this.viewOf(campaign), plan };
  }

  async get(id: string): Promise<CampaignView> {
    return this.viewOf(await this.mustGet(id));
  }

  /** Newest first; `running` only: what the dashboard's overview shows on every refresh. */
  async list(filter: { state?: Campaign['state'] } = {}): Promise<CampaignView[]> {
    return Promise.all((await this.ctx.store.listCampaigns(filter)).map((c) => this.viewOf(c)));
  }

  /**
   * Stops a running campaign: the certificates it has not reissued yet lose its reissue request (the planner
   * selects no further reissue for them; an order already under way still completes), what it reissued stays and
   * keeps deploying. Refused when the campaign is not running.
   */
  async cancel(id: string, actor: Actor): Promise<CampaignView> {
    const campaign = await this.mustGet(id);
    const progress = await campaignProgress(this.ctx.store, campaign);
    const cancelled =
      campaign.state === 'running' &&
      (await this.ctx.store.cancelCampaign(
        id,
        storeChange(withoutCampaignRequest(id)),
        { ...progress },
        actor,
      ));
    if (!cancelled)
      throw new CertfleetError(
        'CONFLICT',
        `emergency campaign "${id}" is not running (it is ${(await this.mustGet(id)).state})`,
        'only a running campaign can be cancelled; see `certfleet emergency status`',
      );
    this.ctx.logger.warn({ campaign: id, ...progress }, 'emergency campaign cancelled');
    return this.get(id);
  }

  async report(id: string) {
    const campaign = await this.mustGet(id);
    const { progress, pending } = await campaignReport(this.ctx.store, campaign);
    return { campaign: withoutItems(campaign), progress, pending };
  }

  /**
   * Follows running campaigns: every `intervalMs`, and soon after any version or deployment change. A look reads
   * the whole campaign from the store (its cost grows with the fleet) and a campaign changes hundreds of times a
   * second, so after each look the next waits at least FOLLOW_QUIET_FACTOR times as long as that look took: on a
   * 10,000-certificate campaign following it keeps to a fifth of the hub's time instead of most of it.
   */
  startWatching(): void {
    if (this.watching) return;
    this.watching = true;
    const every = this.opts.intervalMs ?? 5000;
    // stop() may come while a tick runs: the loop must not re-arm after it (the leader can stop and start again)
    const loop = () => {
      if (!this.watching) return;
      this.timer = setTimeout(() => void this.tickWhenQuiet().finally(loop), every);
      this.timer.unref();
    };
    loop();
    const offs = [
      this.ctx.store.events.on('version.added', () => this.nudge()),
      this.ctx.store.events.on('deployment.transitioned', () => this.nudge()),
    ];
    this.unsubscribe = () => offs.forEach((off) => off());
  }

  /** A look soon after a change: NUDGE_MS later, or once the quiet time after the last look has passed. */
  private nudge(): void {
    if (this.soon || !this.watching) return;
    this.soon = setTimeout(
      () => {
        this.soon = undefined;
        // a look under way may have read before the change: look again after it (and its quiet time)
        if (this.running) void this.running.finally(() => this.nudge());
        else void this.tickWhenQuiet();
      },
      Math.max(NUDGE_MS, this.quietUntil - Date.now()),
    );
    this.soon.unref();
  }

  private async tickWhenQuiet(): Promise<void> {
    const wait = this.quietUntil - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref());
    if (this.watching) await this.tick();
  }

  async stop(): Promise<void> {
    this.watching = false;
    clearTimeout(this.timer);
    clearTimeout(this.soon);
    this.timer = this.soon = undefined;
    this.unsubscribe?.();
    await this.running;
  }

  /** One look at every running campaign; overlapping calls share the one in progress. */
  tick(): Promise<void> {
    this.running ??= (async () => {
      const started = Date.now();
      try {
        await this.followAll();
      } finally {
        this.quietUntil = Date.now() + FOLLOW_QUIET_FACTOR * (Date.now() - started);
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async followAll(): Promise<void> {
    try {
      for (const c of await this.ctx.store.listCampaigns({ state: 'running' })) await this.follow(c);
    } catch (e) {
      this.ctx.logger.error({ err: errorMessage(e) }, 'following emergency campaigns failed');
    }
  }

  private async follow(campaign: Campaign): Promise<void> {
    const { store } = this.ctx;
    if (campaign.options.overrideWindows) await this.overrideWindows(campaign);
    const progress = await campaignProgress(store, campaign);
    if (!progress.complete) return;
    if (await store.finishCampaign(campaign.id, { ...progress }, 'planner'))
      this.ctx.logger.warn({ campaign: campaign.id, ...progress }, 'emergency campaign finished');
  }

  /** Each new version's deployments that have not reloaded get one redeploy request with the window overridden. */
  private async overrideWindows(campaign: Campaign): Promise<void> {
    const { store } = this.ctx;
    const baseline = new Map(campaign.items.map((i) => [i.certificateId, i.baselineVersionId]));
    const asked = new Set(
      (await store.listRedeployRequests())
        .filter((r) => r.overrideWindow)
        .map((r) => `${r.subscriptionId}|${r.versionId}`),
    );
    for (const r of (await store.fleet()).items) {
      const id = r.certificate.id;
      if (!baseline.has(id) || !r.current || r.current.id === baseline.get(id)) continue;
      if (asked.has(`${r.subscription.id}|${r.current.id}`)) continue;
      if (r.deployment && !BEFORE_RELOAD.has(r.deployment.state)) continue;
      await store.requestRedeploy(r.subscription.id, r.current.id, { overrideWindow: true }, campaign.actor);
    }
  }

  /** A finished or cancelled campaign shows the counts stored when it ended: only running ones are computed. */
  private async viewOf(campaign: Campaign): Promise<CampaignView> {
    const stored = campaign.state !== 'running' ? storedProgress(campaign.summary) : undefined;
    return {
      campaign: withoutItems(campaign),
      progress: stored ?? (await campaignProgress(this.ctx.store, campaign)),
    };
  }

  private async mustGet(id: string): Promise<Campaign> {
    const c = await this.ctx.store.getCampaign(id);
    if (!c)
      throw new CertfleetError(
        'NOT_FOUND',
        `no emergency campaign "${id}"`,
        'list them with `certfleet emergency status`',
      );
    return c;
  }
}

/** The final counts as stored by finish or cancel, when they have every field (else they are computed again). */
function storedProgress(summary: Record<string, unknown> | undefined): CampaignProgress | undefined {
  if (!summary) return undefined;
  const counts = PROGRESS_COUNTS.every((k) => typeof summary[k] === 'number');
  if (!counts || typeof summary.complete !== 'boolean') return undefined;
  return summary as unknown as CampaignProgress;
}

function withoutItems({ items, ...rest }: Campaign): CampaignSummary {
  return { ...rest, certificates: items.length };
}
