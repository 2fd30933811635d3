import type { Command } from 'commander';
import { CertfleetError } from '../core/errors.ts';
import type { Alert, ChannelStats, DeliveryResult } from '../notify/index.ts';
import { clientFor, globalFlags } from './context.ts';
import { printJson, relativeTime, table } from './output.ts';

/** `certfleet alerts test|list`. */
export function registerAlertsCommand(program: Command): void {
  const alerts = program.command('alerts').description('alert channels and alerts firing now');

  alerts
    .command('test')
    .description('send a test alert to every configured channel; exits 1 if any channel failed')
    .action(async (_opts, cmd: Command) => {
      const r = await clientFor(cmd).post<{ ok: boolean; results: DeliveryResult[] }>('/api/v1/alerts/test');
      if (globalFlags(cmd).json) printJson(r);
      else if (r.results.length === 0) {
        process.stdout.write('no alert channels configured (hub config `alerts.channels`)\n');
      } else {
        process.stdout.write(
          `${table(
            ['CHANNEL', 'KIND', 'RESULT', 'TIME', 'ERROR'],
            r.results.map((d) => [
              d.channel,
              d.kind,
              d.ok ? 'delivered' : 'FAILED',
              `${d.ms} ms`,
              d.error ? `${d.error.message}${d.error.hint ? ` (${d.error.hint})` : ''}` : '',
            ]),
          )}\n`,
        );
      }
      const failed = r.results.filter((d) => !d.ok);
      if (failed.length) {
        throw new CertfleetError(
          'NOTIFY_FAILED',
          `${failed.length} of ${r.results.length} alert channels failed: ${failed.map((d) => d.channel).join(', ')}`,
          'fix the channel settings in the hub config (alerts.channels) or the receiver, then run `certfleet alerts test` again',
        );
      }
    });

  alerts
    .command('list')
    .description('alerts firing now')
    .action(async (_opts, cmd: Command) => {
      const r = await clientFor(cmd).get<{
        alerts: Alert[];
        evaluating: boolean;
        channels: Record<string, ChannelStats>;
      }>('/api/v1/alerts');
      if (globalFlags(cmd).json) return printJson(r);
      if (r.alerts.length === 0) process.stdout.write('no alerts firing\n');
      else
        process.stdout.write(
          `${table(
            ['SEVERITY', 'KIND', 'EVALUATED', 'TITLE'],
            r.alerts.map((a) => [a.severity, a.kind, relativeTime(a.at), a.title]),
          )}\n`,
        );
      if (!r.evaluating)
        process.stdout.write('(no alert channels configured: conditions computed now, nothing is sent)\n');
    });
}
