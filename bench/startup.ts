/**
 * Start-up time of the `certfleet` binary against a bare `node -e 0`, measured in the same run:
 *   npm run bench -- startup [--runs 30] [--baseline /path/to/other/bin/certfleet.js] [--no-write]
 * Like hyperfine: warm-up runs, then the commands take turns (so a load spike on the shared machine hits them all
 * alike), wall time per process from spawn to exit, median and spread of N; the ratio is median / median of
 * `node -e 0`. `--baseline` adds the same commands run through another binary (e.g. an older checkout).
 * Target: `certfleet --help` ≤ 2× `node -e 0`.
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { writeResultsSection } from './results-section.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'certfleet.js');
const COMMANDS = [['--help'], ['--version'], ['cert', 'list', '--help']];
const TARGET_RATIO = 2;

interface Case {
  label: string;
  args: string[];
  ms: number[];
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Wall time of one process from spawn to exit; a failing command ends the benchmark. */
function timeOnce(c: Case): number {
  const started = performance.now();
  const r = spawnSync(process.execPath, c.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${c.label} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return ms;
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

export async function run(args: string[]): Promise<void> {
  const runs = Number(arg(args, '--runs') ?? 30);
  const baseline = arg(args, '--baseline');
  const cases: Case[] = [{ label: 'node -e 0', args: ['-e', '0'], ms: [] }];
  for (const cmd of COMMANDS)
    cases.push({ label: `certfleet ${cmd.join(' ')}`, args: [BIN, ...cmd], ms: [] });
  if (baseline)
    for (const cmd of COMMANDS)
      cases.push({ label: `baseline: certfleet ${cmd.join(' ')}`, args: [baseline, ...cmd], ms: [] });

  const loadBefore = load();
  for (const c of cases) for (let i = 0; i < 3; i++) timeOnce(c); // warm the file cache
  for (let i = 0; i < runs; i++) for (const c of cases) c.ms.push(timeOnce(c));
  const loadAfter = load();

  const stats = cases.map((c) => {
    const sorted = [...c.ms].sort((a, b) => a - b);
    return { label: c.label, median: quantile(sorted, 0.5), min: sorted[0], p90: quantile(sorted, 0.9) };
  });
  const node = stats[0].median;
  const help = stats.find((s) => s.label === 'certfleet --help')!;
  const ratio = help.median / node;
  const cpu = cpus();
  const lines = [
    '## startup',
    '',
    `Run ${new Date().toISOString().slice(0, 10)} on ${cpu.length} × ${cpu[0]?.model.trim()}, ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${loadBefore} before, ` +
      `${loadAfter} after. The machine is shared with other jobs: absolute times vary from run to run, the ratios ` +
      'measured in the same run are what to compare.',
    `Command: \`npm run bench -- startup --runs ${runs}${baseline ? ' --baseline …' : ''}\` (bench/startup.ts): ` +
      `${runs} runs per command after 3 warm-up runs, the commands taking turns; wall time from spawn to exit.`,
    '',
    '| command | median | min | p90 | vs node -e 0 |',
    '|---|---|---|---|---|',
    ...stats.map(
      (s) =>
        `| \`${s.label}\` | ${s.median.toFixed(0)} ms | ${s.min.toFixed(0)} ms | ${s.p90.toFixed(0)} ms | ` +
        `${(s.median / node).toFixed(2)}× |`,
    ),
    '',
    `Target \`certfleet --help\` ≤ ${TARGET_RATIO}× \`node -e 0\`: ${ratio <= TARGET_RATIO ? 'met' : 'NOT met'} ` +
      `(${ratio.toFixed(2)}×).`,
    '',
  ];
  const section = lines.join('\n');
  console.log(section);
  if (!args.includes('--no-write')) console.log(`written to ${await writeResultsSection(section)}`);
}
