import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { CertfleetError } from '../core/errors.ts';
import type { ProbeTarget } from '../core/types.ts';
import { clientFor, globalFlags } from './context.ts';
import { resolveClientOptions } from './client.ts';
import { printJson, relativeTime, table } from './output.ts';
import {
  addConnectorOptions,
  connectorBody,
  describeConnector,
  registerConnectorCommands,
  type ConnectorFlags,
} from './connector-command.ts';

interface EndpointView {
  name: string;
  kind: string;
  probeTargets: Array<{ host: string; port: number; sni?: string; starttls?: string; from?: string }>;
  lastSeenAt: string | null;
}

/** `host:port[/sni][@hub|@agent|@both]`, IPv6 in brackets; the suffix says who probes it (default the hub). */
export function parseProbeTarget(value: string, previous: unknown[] = []): ProbeTarget[] {
  const m = /^(?:\[([^\]]+)\]|([^:/\s@]+)):(\d{1,5})(?:\/([^\s@]+))?(?:@(hub|agent|both))?$/.exec(value);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) {
    throw new InvalidArgumentError(
      `"${value}" is not HOST:PORT[/SNI][@hub|@agent|@both] (e.g. web1.example.com:443, 10.0.0.5:443/web.internal@agent)`,
    );
  }
  return [
    ...(previous as ProbeTarget[]),
    {
      host: m[1] ?? m[2],
      port: Number(m[3]),
      ...(m[4] ? { sni: m[4] } : {}),
      ...(m[5] && m[5] !== 'hub' ? { from: m[5] as 'agent' | 'both' } : {}),
    },
  ];
}

/** `web1.example.com:443/web.example.com,10.0.0.5:443@agent,…` or `-`. */
function probesCell(targets: EndpointView['probeTargets']): string {
  return (
    targets
      .map(
        (p) =>
          `${p.host}:${p.port}${p.sni ? `/${p.sni}` : ''}${p.from && p.from !== 'hub' ? `@${p.from}` : ''}`,
      )
      .join(',') || '-'
  );
}

/** `--label team=web`, accumulated into one object. */
function parseLabel(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const i = value.indexOf('=');
  if (i < 1) throw new InvalidArgumentError(`"${value}" is not KEY=VALUE (e.g. team=web)`);
  return { ...previous, [value.slice(0, i)]: value.slice(i + 1) };
}

interface EnrollTokenView {
  endpoint: string;
  token: string;
  expiresAt: string;
  caFingerprint: string;
}

/** `30m`, `24h`, `7d` or plain seconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`"${value}" is not a duration (e.g. 30m, 24h, 7d)`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

async function mintEnrollToken(cmd: Command, name: string, ttlSeconds?: number): Promise<EnrollTokenView> {
  return clientFor(cmd).post<EnrollTokenView>(
    `/api/v1/endpoints/${encodeURIComponent(name)}/enroll-token`,
    ttlSeconds ? { ttlSeconds } : {},
  );
}

/** The exact command to run on the endpoint. */
export function enrollCommandLine(hub: string, minted: EnrollTokenView): string {
  return `certfleet agent enroll --hub ${hub} --token ${minted.token} --ca-fingerprint ${minted.caFingerprint}`;
}

function printEnrollment(cmd: Command, minted: EnrollTokenView): string {
  const hub = resolveClientOptions(globalFlags(cmd)).hub;
  return (
    `one-time enrollment token for ${minted.endpoint} (expires ${minted.expiresAt}); on the endpoint run:\n` +
    `  ${enrollCommandLine(hub, minted)}\n`
  );
}

export function registerEndpointCommands(program: Command): void {
  const endpoint = program.command('endpoint').description('manage endpoints');

  addConnectorOptions(
    endpoint
      .command('add <name>')
      .description('create an endpoint')
      .option('--agent', 'the endpoint runs a certfleet agent (default)')
      .option('--connector [kind]', 'the hub pushes to this endpoint: ssh or command (docs/connectors.md)'),
  )
    .option(
      '--probe <host:port[/sni][@agent]>',
      'where to verify the served certificate (repeatable); @agent: probed by the agent (the hub cannot reach it), @both: by both',
      parseProbeTarget,
    )
    .option(
      '--enroll-ttl <duration>',
      'with --agent: how long the enrollment token is valid (default 24h)',
      parseDuration,
    )
    .action(
      async (
        name: string,
        opts: ConnectorFlags & { agent?: boolean; probe?: unknown[]; enrollTtl?: number },
        cmd: Command,
      ) => {
        // Checked (key file read) before anything is created, so a typo leaves nothing half-made behind.
        const connector = await connectorBody(opts);
        const client = clientFor(cmd);
        const created = await client.post<EndpointView>('/api/v1/endpoints', {
          name,
          kind: opts.connector ? 'connector' : 'agent',
          probeTargets: opts.probe ?? [],
        });
        const settings = connector
          ? await client
              .put<Parameters<typeof describeConnector>[1]>(
                `/api/v1/endpoints/${encodeURIComponent(name)}/connector`,
                connector,
              )
              .catch(async (e: unknown) => {
                await client.delete(`/api/v1/endpoints/${encodeURIComponent(name)}`).catch(() => undefined);
                throw e;
              })
          : undefined;
        const minted =
          opts.agent && !opts.connector ? await mintEnrollToken(cmd, name, opts.enrollTtl) : undefined;
        if (globalFlags(cmd).json)
          return printJson({
            ...created,
            ...(minted ? { enrollment: minted } : {}),
            ...(settings ? { connector: settings } : {}),
          });
        process.stdout.write(`created ${created.kind} endpoint ${created.name}\n`);
        if (settings) process.stdout.write(describeConnector(name, settings));
        if (minted) process.stdout.write(printEnrollment(cmd, minted));
      },
    );

  registerConnectorCommands(endpoint);

  endpoint
    .command('enroll-token <name>')
    .description('mint a new one-time enrollment token for an agent endpoint')
    .option('--enroll-ttl <duration>', 'how long the token is valid (default 24h)', parseDuration)
    .action(async (name: string, opts: { enrollTtl?: number }, cmd: Command) => {
      const minted = await mintEnrollToken(cmd, name, opts.enrollTtl);
      if (globalFlags(cmd).json) return printJson(minted);
      process.stdout.write(printEnrollment(cmd, minted));
    });

  endpoint
    .command('list')
    .description('list endpoints')
    .action(async (_opts, cmd: Command) => {
      const list = await clientFor(cmd).getAll<EndpointView>('/api/v1/endpoints');
      if (globalFlags(cmd).json) return printJson(list);
      process.stdout.write(
        `${table(
          ['NAME', 'KIND', 'PROBES', 'LAST SEEN'],
          list.map((e) => [e.name, e.kind, probesCell(e.probeTargets), relativeTime(e.lastSeenAt)]),
        )}\n`,
      );
    });

  endpoint
    .command('set <name>')
    .description("change an endpoint's probe targets or labels; its subscriptions and enrollment stay")
    .option(
      '--probe <host:port[/sni][@agent]>',
      'where to verify the served certificate (repeatable; replaces the current list); @agent: probed by the agent, @both: by both',
      parseProbeTarget,
    )
    .option('--clear-probes', 'remove every probe target')
    .option('--label <key=value>', 'a label (repeatable; replaces the current labels)', parseLabel)
    .action(
      async (
        name: string,
        opts: { probe?: unknown[]; clearProbes?: boolean; label?: Record<string, string> },
        cmd: Command,
      ) => {
        if (opts.probe && opts.clearProbes) {
          throw new CertfleetError(
            'USAGE',
            '--probe and --clear-probes contradict each other',
            'give the probe targets to keep with --probe, or only --clear-probes to remove them all',
          );
        }
        if (!opts.probe && !opts.clearProbes && !opts.label) {
          throw new CertfleetError(
            'USAGE',
            `nothing to change on endpoint ${name}`,
            'give --probe HOST:PORT[/SNI][@agent] (repeatable), --clear-probes or --label KEY=VALUE',
          );
        }
        const updated = await clientFor(cmd).request<EndpointView>(
          'PATCH',
          `/api/v1/endpoints/${encodeURIComponent(name)}`,
          {
            ...(opts.probe || opts.clearProbes ? { probeTargets: opts.probe ?? [] } : {}),
            ...(opts.label ? { labels: opts.label } : {}),
          },
        );
        if (globalFlags(cmd).json) return printJson(updated);
        process.stdout.write(
          `updated endpoint ${updated.name}: probes ${probesCell(updated.probeTargets)}\n`,
        );
      },
    );

  endpoint
    .command('rm <name>')
    .description('delete an endpoint and its subscriptions')
    .action(async (name: string, _opts, cmd: Command) => {
      await clientFor(cmd).delete(`/api/v1/endpoints/${encodeURIComponent(name)}`);
      if (globalFlags(cmd).json) return printJson({ deleted: name });
      process.stdout.write(`deleted endpoint ${name}\n`);
    });
}
