import type { Command } from 'commander';
import { globalFlags } from './context.ts';
import { exitWith } from './exit.ts';
import { printJson } from './output.ts';

export function registerRehearseCommand(program: Command): void {
  program
    .command('rehearse')
    .description(
      'live through simulated days of renewals, deploys and faults with the real planner, issuance, deploy pipeline, probe judgement and alert rules; exit 1 when a goal fails',
    )
    .option('--days <n>', 'simulated days', '365')
    .option('--endpoints <n>', 'endpoints, one certificate each', '1000')
    .option('--lifetime <d|h>', 'certificate lifetime, e.g. 47d, 6d, 160h', '47d')
    .option(
      '--faults <list>',
      'comma-separated: ca-down, rate-limit, dns, reload-fails, agent-offline, hub-restart; or all',
    )
    .option('--seed <n>', 'seed for the fleet and the fault schedule', '1')
    .option('--html <file>', 'also write the report as one self-contained HTML page with a chart')
    .action(
      async (
        opts: {
          days: string;
          endpoints: string;
          lifetime: string;
          faults?: string;
          seed: string;
          html?: string;
        },
        cmd: Command,
      ) => {
        const { rehearsalOptionsFrom } = await import('../rehearsal/rehearsal-options.ts');
        const options = rehearsalOptionsFrom(opts);
        const { runRehearsal } = await import('../rehearsal/rehearsal.ts');
        const { goalsOf, formatReport } = await import('../rehearsal/rehearsal-report.ts');
        const progress = process.stderr.isTTY
          ? (day: number) => process.stderr.write(`\rsimulated day ${day}/${options.days}`)
          : undefined;
        const result = await runRehearsal({ ...options, ...(progress ? { onProgress: progress } : {}) });
        if (progress) process.stderr.write('\n');
        const goals = goalsOf(result);
        if (opts.html) {
          const { writeFile } = await import('node:fs/promises');
          const { htmlReport } = await import('../rehearsal/html-report.ts');
          await writeFile(opts.html, htmlReport(result));
        }
        const ok = goals.every((g) => g.ok);
        if (globalFlags(cmd).json) printJson({ ok, goals, ...result });
        else process.stdout.write(formatReport(result, goals));
        exitWith(ok ? 0 : 1);
      },
    );
}
