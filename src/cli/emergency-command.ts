/**
 * `certfleet emergency`: the bad-day command (docs/emergency.md). `reissue` shows the plan, asks, starts a campaign
 * on the hub and follows it; `status` and `report` read it back. The hub does the work (its planner reissues);
 * this file parses, asks, prints. Heavy modules are imported inside the actions (test/cli/startup.test.ts).
 */
import { Option, type Command } from 'commander';
import type { CampaignPlan } from '../hub/emergency/campaign-plan.ts';
import type { CampaignView } from '../hub/emergency/campaign-service.ts';
import type { ReportLine } from '../hub/emergency/campaign-progress.ts';
import type { HubClient } from './client.ts';
import { CertfleetError } from '../core/errors.ts';
import { clientFor, globalFlags } from './context.ts';
import { exitWith } from './exit.ts';
import { printJson, table } from './output.ts';

interface ReissueFlags {
  issuer?: string;
  serials?: string;
  intermediate?: string;
  all?: boolean;
  rekey?: boolean;
  overrideWindows?: boolean;
  reason?: string;
  yes?: boolean;
  detach?: boolean;
}

const POLL_MS = 1000;
const BASE = '/api/v1/emergency';

export function registerEmergencyCommands(program: Command): void {
  const emergency = program
    .command('emergency')
    .description('the bad day: reissue many certificates at once and follow them until they are served');

  emergency
    .command('reissue')
    .description('select certificates, show the plan, confirm, then reissue and deploy them all, urgently')
    .option('--issuer <name>', 'every certificate of this issuer')
    .option('--serials <file>', 'the certificates whose current serial is listed (one hex serial per line)')
    .option('--intermediate <sha256>', 'the certificates whose current chain holds this intermediate')
    .option('--all', 'every certificate')
    .option('--rekey', 'make sure every new version has a new key (they always do: recorded for the audit)')
    .option('--override-windows', "reload the new versions outside the endpoints' change windows")
    .option('--reason <text>', 'why, for the audit log (e.g. the CA incident URL)')
    .option('--yes', 'start without asking (scripts)')
    .addOption(
      new Option('--detach', 'start and return; follow with `certfleet emergency status ID --watch`'),
    )
    .action(async (flags: ReissueFlags, cmd: Command) => {
      const { json } = globalFlags(cmd);
      const selector = await selectorFromFlags(flags);
      const client = clientFor(cmd);
      const plan = await client.post<CampaignPlan>(`${BASE}/plan`, selector);
      if (!json) process.stdout.write(formatPlan(plan));
      if (!flags.yes) {
        if (!process.stdin.isTTY)
          throw new CertfleetError(
            'USAGE',
            'not started: confirmation needed and there is no terminal to ask on',
            'read the plan, then run again with --yes',
          );
        const { confirm } = await import('./confirm.ts');
        if (!(await confirm(`Reissue ${plan.certificates} certificate(s) now? [y/N] `)))
          throw new CertfleetError('USAGE', 'not started', 'run again and answer y, or pass --yes');
      }
      const started = await client.post<CampaignView & { plan: CampaignPlan }>(`${BASE}/campaigns`, {
        ...selector,
        ...(flags.rekey ? { rekey: true } : {}),
        ...(flags.overrideWindows ? { overrideWindows: true } : {}),
        ...(flags.reason ? { reason: flags.reason } : {}),
      });
      const id = started.campaign.id;
      if (json && flags.detach) return printJson(started);
      if (!json)
        process.stdout.write(
          `campaign ${id} started: ${started.campaign.certificates} certificate(s)` +
            `${flags.detach ? `; follow it with \`certfleet emergency status ${id} --watch\`` : ''}\n`,
        );
      if (flags.detach) return;
      const end = await follow(client, id, Boolean(json));
      if (json) printJson(end);
      finish(end);
    });

  emergency
    .command('status [id]')
    .description('campaigns and their progress (issued / delivered / reloaded / verified / failed)')
    .option('--watch', 'follow the campaign (the newest running one without an id) until it is done')
    .action(async (id: string | undefined, flags: { watch?: boolean }, cmd: Command) => {
      const { json } = globalFlags(cmd);
      const client = clientFor(cmd);
      const { progressLine } = await import('./campaign-progress-line.ts');
      if (!id) {
        const all = await client.get<CampaignView[]>(`${BASE}/campaigns`);
        if (!flags.watch) {
          if (json) return printJson(all);
          if (all.length === 0) return void process.stdout.write('No emergency campaigns.\n');
          process.stdout.write(
            table(
              ['ID', 'STARTED', 'STATE', 'SELECTOR', 'PROGRESS'],
              all.map((v) => [
                v.campaign.id,
                v.campaign.createdAt,
                v.campaign.state,
                selectorText(v.campaign.selector),
                progressLine(v.progress, v.campaign.state),
              ]),
            ) + '\n',
          );
          return;
        }
        const running = all.find((v) => v.campaign.state === 'running');
        if (!running)
          throw new CertfleetError('NOT_FOUND', 'no emergency campaign is running', 'name one: status ID');
        id = running.campaign.id;
      }
      if (!flags.watch) {
        const view = await client.get<CampaignView>(`${BASE}/campaigns/${encodeURIComponent(id)}`);
        if (json) return printJson(view);
        process.stdout.write(
          `campaign ${id} (${view.campaign.state})\n${progressLine(view.progress, view.campaign.state)}\n`,
        );
        return;
      }
      const end = await follow(client, id, Boolean(json));
      if (json) printJson(end);
      finish(end);
    });

  emergency
    .command('cancel <id>')
    .description('stop a running campaign: no further reissues; what it reissued stays and keeps deploying')
    .action(async (id: string, _flags: unknown, cmd: Command) => {
      const { json } = globalFlags(cmd);
      const view = await clientFor(cmd).post<CampaignView>(
        `${BASE}/campaigns/${encodeURIComponent(id)}/cancel`,
        {},
      );
      if (json) return printJson(view);
      const { progressLine } = await import('./campaign-progress-line.ts');
      process.stdout.write(
        `campaign ${id} cancelled: ${view.progress.certificates - view.progress.issued} certificate(s) not reissued\n` +
          `${progressLine(view.progress, view.campaign.state)}\n`,
      );
    });

  emergency
    .command('report <id>')
    .description('every endpoint not yet serving a new certificate of the campaign, and why (exit 1 if any)')
    .action(async (id: string, _flags: unknown, cmd: Command) => {
      const { json } = globalFlags(cmd);
      const report = await clientFor(cmd).get<CampaignView & { pending: ReportLine[] }>(
        `${BASE}/campaigns/${encodeURIComponent(id)}/report`,
      );
      if (json) printJson(report);
      else process.stdout.write(formatReport(report));
      exitWith(report.pending.length ? 1 : 0);
    });
}

/** The selector the hub takes; one selector only, the serials file read here (the hub never reads client files). */
async function selectorFromFlags(flags: ReissueFlags) {
  const given = [flags.issuer, flags.serials, flags.intermediate, flags.all].filter((v) => v !== undefined);
  if (given.length !== 1)
    throw new CertfleetError(
      'USAGE',
      given.length === 0 ? 'no certificates selected' : 'choose one selector',
      'pass exactly one of --issuer NAME, --serials FILE, --intermediate SHA256, --all',
    );
  if (flags.serials === undefined)
    return {
      ...(flags.issuer !== undefined ? { issuer: flags.issuer } : {}),
      ...(flags.intermediate !== undefined ? { intermediate: flags.intermediate } : {}),
      ...(flags.all ? { all: true } : {}),
    };
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(flags.serials, 'utf8');
  } catch (e) {
    throw new CertfleetError(
      'USAGE',
      `cannot read the serials file ${flags.serials}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      'check the path and its permissions',
    );
  }
  const { parseSerialList } = await import('../hub/emergency/selection.ts');
  return { serials: parseSerialList(text) };
}

/** Polls the campaign until it is done, printing progress (unless `quiet`: --json prints the end only). */
async function follow(client: HubClient, id: string, quiet: boolean): Promise<CampaignView> {
  const { progressLine, ProgressPrinter } = await import('./campaign-progress-line.ts');
  const printer = new ProgressPrinter();
  for (;;) {
    const view = await client.get<CampaignView>(`${BASE}/campaigns/${encodeURIComponent(id)}`);
    if (!quiet) printer.show(progressLine(view.progress, view.campaign.state));
    if (view.campaign.state !== 'running') {
      printer.end();
      return view;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function finish(view: CampaignView): void {
  if (view.campaign.state === 'cancelled') {
    process.stderr.write(`campaign ${view.campaign.id} was cancelled\n`);
    return exitWith(1);
  }
  const failed = view.progress.failed;
  if (failed)
    process.stderr.write(
      `${failed} deployment(s) failed; see \`certfleet emergency report ${view.campaign.id}\`\n`,
    );
  exitWith(failed ? 1 : 0);
}

function selectorText(s: { kind: string; value?: string }): string {
  return s.value ? `${s.kind} ${s.value}` : s.kind;
}

function duration(seconds: number): string {
  if (seconds < 90) return `${seconds}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function formatPlan(plan: CampaignPlan): string {
  const lines = [
    `Emergency reissue: ${plan.certificates} certificate(s) selected (${selectorText(plan.selector)}), ` +
      `${plan.subscriptions} endpoint deployment(s).`,
  ];
  if (plan.unknownSerials.length)
    lines.push(`Unknown serials (no version has them): ${plan.unknownSerials.join(', ')}`);
  if (plan.replacedSerials.length)
    lines.push(`Already replaced (not current): ${plan.replacedSerials.join(', ')}`);
  if (plan.issuers.length)
    lines.push(
      table(
        ['ISSUER', 'CERTIFICATES', 'ARI REPLACES', 'ORDER HEADROOM', 'DEFERRED', 'ESTIMATE'],
        plan.issuers.map((i) => [
          i.issuer,
          i.certificates,
          i.ariRenewals,
          i.headroom.length ? i.headroom.map((h) => `${h.remaining}/${h.max}`).join(', ') : 'no limits',
          i.deferred ? `${i.deferred} until ${i.lastOrderAt}` : 0,
          duration(i.estimatedSeconds),
        ]),
      ),
    );
  lines.push(`Estimated time to issue all: ${duration(plan.estimatedSeconds)} (then delivery and reloads).`);
  return lines.join('\n') + '\n';
}

export function formatReport(r: CampaignView & { pending: ReportLine[] }): string {
  const head = `campaign ${r.campaign.id} (${r.campaign.state}): ${r.progress.verified}/${r.progress.deployments} deployments verified, ${r.progress.failed} failed\n`;
  if (r.pending.length === 0) return `${head}Every endpoint serves a new certificate.\n`;
  return (
    head +
    table(
      ['CERTIFICATE', 'ENDPOINT', 'STATE', 'WHY', 'PROBE'],
      r.pending.map((p) => [
        p.certificate,
        p.endpoint,
        p.state,
        p.lastError ?? p.reason ?? '-',
        p.probes.length
          ? p.probes
              .map(
                (x) =>
                  `${x.target} ${x.ok ? (x.servesNew ? 'serves new' : 'serves old') : `error: ${x.error ?? '?'}`}`,
              )
              .join('; ')
          : 'no probe yet',
      ]),
    ) +
    '\n'
  );
}
