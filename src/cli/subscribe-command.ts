import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { clientFor, globalFlags } from './context.ts';
import { printJson } from './output.ts';

/** `--output fullchain:/etc/ssl/web.pem[:owner:group:mode]` */
function parseOutput(value: string, previous: unknown[] = []) {
  const [format, path, owner, group, mode] = value.split(':');
  if (!format || !path) throw new InvalidArgumentError(`"${value}" is not FORMAT:PATH[:OWNER:GROUP:MODE]`);
  return [
    ...previous,
    { format, path, ...(owner ? { owner } : {}), ...(group ? { group } : {}), ...(mode ? { mode } : {}) },
  ];
}

export function registerSubscribeCommand(program: Command): void {
  program
    .command('subscribe <endpoint> <certificate>')
    .description('subscribe an endpoint to a certificate (creates or replaces the subscription)')
    .option('--output <format:path[:owner:group:mode]>', 'an output file (repeatable)', parseOutput)
    .option('--config-test <command>', 'command that checks the service config (e.g. "nginx -t")')
    .option('--reload <command>', 'command that reloads the service (e.g. "nginx -s reload")')
    .action(
      async (
        endpoint: string,
        certificate: string,
        opts: { output?: unknown[]; configTest?: string; reload?: string },
        cmd: Command,
      ) => {
        const sub = await clientFor(cmd).post<{ id: string }>('/api/v1/subscriptions', {
          endpoint,
          certificate,
          outputs: opts.output ?? [],
          ...(opts.configTest ? { configTest: opts.configTest } : {}),
          ...(opts.reload ? { reload: opts.reload } : {}),
        });
        if (globalFlags(cmd).json) return printJson(sub);
        process.stdout.write(`subscribed ${endpoint} to ${certificate} (subscription ${sub.id})\n`);
      },
    );
}
