import type { Command } from 'commander';
import { CertfleetError } from '../core/errors.ts';
import type { Deployment, Subscription } from '../core/types.ts';
import { clientFor, globalFlags } from './context.ts';
import type { HubClient } from './client.ts';
import { printJson, relativeTime, table } from './output.ts';

/** One subscription as `GET /api/v1/subscriptions[/:id]` answers it. */
export interface SubscriptionView extends Subscription {
  endpoint: string;
  endpointKind: string;
  certificate: string;
  deployment: Deployment | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `host:port[/sni]` */
const target = (t: { host: string; port: number; sni?: string }) =>
  `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}${t.sni ? `/${t.sni}` : ''}`;

/**
 * A subscription by id or by `ENDPOINT/CERTIFICATE`; SUBSCRIPTION_NOT_FOUND when there is none, USAGE (exit 2)
 * when the reference is neither form.
 */
export async function resolveSubscription(client: HubClient, ref: string): Promise<SubscriptionView> {
  if (UUID.test(ref)) return client.get<SubscriptionView>(`/api/v1/subscriptions/${ref}`);
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(ref);
  if (!m) {
    throw new CertfleetError(
      'USAGE',
      `"${ref}" is neither a subscription id nor ENDPOINT/CERTIFICATE`,
      'name it as in `certfleet subscription list`, e.g. web1/web',
    );
  }
  const q = new URLSearchParams({ endpoint: m[1], certificate: m[2] });
  const [found] = await client.getAll<SubscriptionView>(`/api/v1/subscriptions?${q}`);
  if (!found) {
    throw new CertfleetError(
      'SUBSCRIPTION_NOT_FOUND',
      `endpoint ${m[1]} is not subscribed to certificate ${m[2]}`,
      `subscribe it with \`certfleet subscribe ${m[1]} ${m[2]} ...\`, or list subscriptions with \`certfleet subscription list\``,
    );
  }
  return found;
}

function outputLine(o: Subscription['outputs'][number]): string {
  const extra = [
    o.owner ? `owner ${o.owner}` : '',
    o.group ? `group ${o.group}` : '',
    o.mode ? `mode ${o.mode}` : '',
    o.passwordRef ? `password ${o.passwordRef}` : '',
  ].filter(Boolean);
  return `${o.format} ${o.path}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

/** The human form of `subscription show`: one fact per line, the deployment last. */
export function formatSubscription(s: SubscriptionView): string {
  const rows: Array<[string, string]> = [
    ['endpoint', `${s.endpoint} (${s.endpointKind})`],
    ['certificate', s.certificate],
    ...s.outputs.map((o, i): [string, string] => [i === 0 ? 'outputs' : '', outputLine(o)]),
  ];
  if (!s.outputs.length) rows.push(['outputs', '-']);
  if (s.configTest) rows.push(['config test', s.configTest]);
  if (s.reload) rows.push(['reload', s.reload]);
  if (s.window)
    rows.push(['window', `"${s.window.cron}" for ${s.window.durationMinutes} min (${s.window.timezone})`]);
  if (s.verify) rows.push(['verify', target(s.verify)]);
  if (s.certbotLineage) rows.push(['certbot lineage', `${s.certbotLineage} (RENEWED_LINEAGE for hooks)`]);
  const d = s.deployment;
  rows.push([
    'deployment',
    d ? `${d.state} ${relativeTime(d.updatedAt)}${d.reason ? ` (${d.reason})` : ''}` : '-',
  ]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return `subscription ${s.id}\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

export function registerSubscriptionCommands(program: Command): void {
  const subscription = program
    .command('subscription')
    .description('list, show and remove subscriptions (create or change one with `certfleet subscribe`)');

  subscription
    .command('list')
    .description('list subscriptions by certificate, then endpoint, with the deployment state')
    .option('--endpoint <name>', 'only this endpoint')
    .option('--certificate <name>', 'only this certificate')
    .action(async (opts: { endpoint?: string; certificate?: string }, cmd: Command) => {
      const q = new URLSearchParams();
      if (opts.endpoint) q.set('endpoint', opts.endpoint);
      if (opts.certificate) q.set('certificate', opts.certificate);
      const list = await clientFor(cmd).getAll<SubscriptionView>(
        `/api/v1/subscriptions${q.size ? `?${q}` : ''}`,
      );
      if (globalFlags(cmd).json) return printJson(list);
      process.stdout.write(
        `${table(
          ['ID', 'ENDPOINT', 'CERTIFICATE', 'OUTPUTS', 'RELOAD', 'STATE'],
          list.map((s) => [
            s.id,
            s.endpoint,
            s.certificate,
            s.outputs.map((o) => o.path).join(',') || '-',
            s.reload ?? '-',
            s.deployment
              ? `${s.deployment.state}${s.deployment.reason ? ` (${s.deployment.reason})` : ''}`
              : '-',
          ]),
        )}\n`,
      );
    });

  subscription
    .command('show <ref>')
    .description('show a subscription (by id or ENDPOINT/CERTIFICATE): outputs, commands, window, deployment')
    .action(async (ref: string, _opts, cmd: Command) => {
      const s = await resolveSubscription(clientFor(cmd), ref);
      if (globalFlags(cmd).json) return printJson(s);
      process.stdout.write(formatSubscription(s));
    });

  subscription
    .command('rm <ref>')
    .description(
      'remove a subscription (by id or ENDPOINT/CERTIFICATE); the agent stops deploying it, files stay in place',
    )
    .action(async (ref: string, _opts, cmd: Command) => {
      const client = clientFor(cmd);
      const s = await resolveSubscription(client, ref);
      await client.delete(`/api/v1/subscriptions/${s.id}`);
      if (globalFlags(cmd).json)
        return printJson({ deleted: s.id, endpoint: s.endpoint, certificate: s.certificate });
      process.stdout.write(`removed subscription ${s.endpoint}/${s.certificate} (${s.id})\n`);
    });
}
