import type { Command } from 'commander';
import { clientFor, globalFlags } from './context.ts';
import { printJson, relativeTime, table } from './output.ts';

export interface StatusRow {
  subscriptionId: string;
  certificate: string | null;
  endpoint: string | null;
  endpointKind: string | null;
  version: { id: string; serial: string; fingerprint: string; notAfter: string } | null;
  deployment: { state: string; reason: string | null; updatedAt: string } | null;
  lastSeenAt: string | null;
}

/** `ab12cd34…` of a SHA-256 fingerprint: enough to tell versions apart in a table. */
const short = (fp: string | undefined) => (fp ? `${fp.slice(0, 12)}` : undefined);

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('certificate × endpoint: version, deployment state and age, agent last contact')
    .action(async (_opts, cmd: Command) => {
      const rows = await clientFor(cmd).get<StatusRow[]>('/api/v1/status');
      if (globalFlags(cmd).json) return printJson(rows);
      process.stdout.write(
        `${table(
          ['CERTIFICATE', 'ENDPOINT', 'STATE', 'SINCE', 'VERSION', 'AGENT SEEN', 'REASON'],
          rows.map((s) => [
            s.certificate,
            s.endpoint,
            s.deployment?.state ?? (s.version ? 'pending' : 'no version'),
            relativeTime(s.deployment?.updatedAt),
            s.version ? `${short(s.version.fingerprint)} #${s.version.serial.slice(0, 8)}` : '-',
            s.endpointKind === 'agent' ? relativeTime(s.lastSeenAt) : 'n/a',
            s.deployment?.reason,
          ]),
        )}\n`,
      );
    });
}
