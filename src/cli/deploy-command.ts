import type { Command } from 'commander';
import type { RedeployResponse } from '../hub/api/redeploy-routes.ts';
import { clientFor, globalFlags } from './context.ts';
import { printJson, table } from './output.ts';

/**
 * `certfleet deploy <certificate> [--endpoint NAME] [--now]`: asks the subscribed agents to deploy the current
 * version again (e.g. after fixing what made it roll back); `--now` reloads even outside the change window, and the
 * override is recorded as an event.
 */
export function registerDeployCommand(program: Command): void {
  program
    .command('deploy <certificate>')
    .description(
      "ask the agents to (re)deploy the certificate's current version now, in their change window unless --now",
    )
    .option('--endpoint <name>', 'only this endpoint (default: every subscribed endpoint)')
    .option('--now', 'reload even outside the change window (recorded as an event)')
    .action(async (certificate: string, opts: { endpoint?: string; now?: boolean }, cmd: Command) => {
      const res = await clientFor(cmd).post<RedeployResponse>(
        `/api/v1/certificates/${encodeURIComponent(certificate)}/deploy`,
        { ...(opts.endpoint ? { endpoint: opts.endpoint } : {}), overrideWindow: opts.now === true },
      );
      if (globalFlags(cmd).json) return printJson(res);
      const what = res.overrideWindow
        ? 'deploy now, outside the change window if shut'
        : 'deploy in change window';
      process.stdout.write(
        `${res.certificate} version ${res.version.fingerprint.slice(0, 12)} #${res.version.serial.slice(0, 8)}:\n` +
          `${table(
            ['ENDPOINT', 'WAS', 'REQUESTED'],
            res.requests.map((r) => [r.endpoint, r.previousState ?? 'pending', what]),
          )}\n` +
          `follow with \`certfleet status\`\n`,
      );
    });
}
