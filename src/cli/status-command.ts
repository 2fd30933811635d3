import type { Command } from 'commander';
import { clientFor, globalFlags } from './context.ts';
import { printJson, relativeTime, table } from './output.ts';

interface SubscriptionView {
  id: string;
  endpoint?: string;
  certificate?: string;
  deployment: { state: string; reason?: string; updatedAt: string } | null;
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('certificate × endpoint: the state and age of each deployment')
    .action(async (_opts, cmd: Command) => {
      const subs = await clientFor(cmd).get<SubscriptionView[]>('/api/v1/subscriptions');
      if (globalFlags(cmd).json) return printJson(subs);
      process.stdout.write(
        `${table(
          ['CERTIFICATE', 'ENDPOINT', 'STATE', 'SINCE', 'REASON'],
          subs.map((s) => [
            s.certificate,
            s.endpoint,
            s.deployment?.state ?? 'no version',
            relativeTime(s.deployment?.updatedAt),
            s.deployment?.reason,
          ]),
        )}\n`,
      );
    });
}
