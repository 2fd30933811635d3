/**
 * How long `certfleet rehearse` takes: a simulated year (by default) of N endpoints through the real planner,
 * issuance, internal CA, deploy pipeline, probe judgement and alert rules, in this process.
 *
 *   npm run bench -- rehearse [--days 365] [--endpoints 1000] [--lifetime 47d] [--faults all|none|a,b]
 *
 * Prints one Markdown row per run: wall seconds, issuances, events, served-expired minutes, goals, load average.
 * The target (issue 15) is ≤ 5 minutes for a year of 1,000 endpoints.
 */
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { rehearsalOptionsFrom } from '../src/rehearsal/rehearsal-options.ts';
import { runRehearsal } from '../src/rehearsal/rehearsal.ts';
import { formatReport, goalsOf } from '../src/rehearsal/rehearsal-report.ts';

const arg = (args: string[], name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const loadavg = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');

export async function run(args: string[]): Promise<void> {
  const faults = arg(args, 'faults', 'all');
  const options = rehearsalOptionsFrom({
    days: arg(args, 'days', '365'),
    endpoints: arg(args, 'endpoints', '1000'),
    lifetime: arg(args, 'lifetime', '47d'),
    faults: faults === 'none' ? '' : faults,
    seed: arg(args, 'seed', '1'),
  });
  process.stdout.write(
    `# ${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}, ${new Date().toISOString()}\n` +
      '| days | endpoints | lifetime | faults | wall s | CPU s | issuances | events | served expired (endpoint-min) | goals | loadavg before / after |\n' +
      '|---|---|---|---|---|---|---|---|---|---|---|\n',
  );
  const before = await loadavg();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const r = await runRehearsal(options);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const goals = goalsOf(r);
  process.stdout.write(
    `| ${options.days} | ${options.endpoints} | ${arg(args, 'lifetime', '47d')} | ${options.faults.join(',') || 'none'} | ` +
      `${wall.toFixed(1)} | ${((cpu.user + cpu.system) / 1e6).toFixed(1)} | ${r.issuances.total} | ${r.run.events} | ${r.servedExpired.endpointMinutes} | ` +
      `${
        goals.every((g) => g.ok)
          ? 'met'
          : `FAILED: ${goals
              .filter((g) => !g.ok)
              .map((g) => g.name)
              .join('; ')}`
      } | ` +
      `${before} / ${await loadavg()} |\n`,
  );
  // Which fault was alerted when, and the verdict: the report's own lines, so a failed goal names its fault.
  const report = formatReport(r, goals).split('\n');
  process.stdout.write(report.slice(report.findIndex((l) => l.startsWith('Faults'))).join('\n'));
}
