import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { clientFor, globalFlags } from './context.ts';
import { printJson, relativeTime, table } from './output.ts';

interface EndpointView {
  name: string;
  kind: string;
  probeTargets: Array<{ host: string; port: number; sni?: string; starttls?: string }>;
  lastSeenAt: string | null;
}

/** `host:port[/sni]`, IPv6 in brackets. */
export function parseProbeTarget(value: string, previous: unknown[] = []) {
  const m = /^(?:\[([^\]]+)\]|([^:/\s]+)):(\d{1,5})(?:\/(\S+))?$/.exec(value);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) {
    throw new InvalidArgumentError(`"${value}" is not HOST:PORT[/SNI] (e.g. web1.example.com:443)`);
  }
  return [...previous, { host: m[1] ?? m[2], port: Number(m[3]), ...(m[4] ? { sni: m[4] } : {}) }];
}

export function registerEndpointCommands(program: Command): void {
  const endpoint = program.command('endpoint').description('manage endpoints');

  endpoint
    .command('add <name>')
    .description('create an endpoint')
    .option('--agent', 'the endpoint runs a certfleet agent (default)')
    .option('--connector', 'the hub pushes to this endpoint')
    .option(
      '--probe <host:port[/sni]>',
      'where to verify the served certificate (repeatable)',
      parseProbeTarget,
    )
    .action(
      async (
        name: string,
        opts: { agent?: boolean; connector?: boolean; probe?: unknown[] },
        cmd: Command,
      ) => {
        const created = await clientFor(cmd).post<EndpointView>('/api/v1/endpoints', {
          name,
          kind: opts.connector ? 'connector' : 'agent',
          probeTargets: opts.probe ?? [],
        });
        if (globalFlags(cmd).json) return printJson(created);
        process.stdout.write(`created ${created.kind} endpoint ${created.name}\n`);
      },
    );

  endpoint
    .command('list')
    .description('list endpoints')
    .action(async (_opts, cmd: Command) => {
      const list = await clientFor(cmd).get<EndpointView[]>('/api/v1/endpoints');
      if (globalFlags(cmd).json) return printJson(list);
      process.stdout.write(
        `${table(
          ['NAME', 'KIND', 'PROBES', 'LAST SEEN'],
          list.map((e) => [
            e.name,
            e.kind,
            e.probeTargets.map((p) => `${p.host}:${p.port}${p.sni ? `/${p.sni}` : ''}`).join(',') || '-',
            relativeTime(e.lastSeenAt),
          ]),
        )}\n`,
      );
    });

  endpoint
    .command('rm <name>')
    .description('delete an endpoint and its subscriptions')
    .action(async (name: string, _opts, cmd: Command) => {
      await clientFor(cmd).delete(`/api/v1/endpoints/${encodeURIComponent(name)}`);
      if (globalFlags(cmd).json) return printJson({ deleted: name });
      process.stdout.write(`deleted endpoint ${name}\n`);
    });
}
