import type { Command } from 'commander';
import type { Diagnosis, DoctorReport } from '../doctor/diagnosis.ts';
import { clientFor, globalFlags } from './context.ts';
import { EXIT, exitWith } from './exit.ts';
import { printJson } from './output.ts';

/**
 * `certfleet doctor [NAME]`: the hub runs the checks (it holds the issuers): issuance, and the deployment of the
 * current version on every endpoint. Exit code 1 when any check fails (a failed, rolled back or diverged
 * deployment, an issuance failure, an expired version); warnings (waiting for a change window) exit 0.
 */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor [name]')
    .description(
      'explain renewal, issuer and deployment problems (per endpoint: step, exit code, stderr, what is served) with the fix; exit 1 when any',
    )
    .action(async (name: string | undefined, _opts, cmd: Command) => {
      const report = await clientFor(cmd).get<DoctorReport>(
        `/api/v1/doctor${name ? `?certificate=${encodeURIComponent(name)}` : ''}`,
      );
      if (globalFlags(cmd).json) printJson(report);
      else process.stdout.write(formatDoctorReport(report));
      exitWith(report.ok ? EXIT.ok : EXIT.failure);
    });
}

const MARK = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;

function lines(d: Diagnosis): string[] {
  const out = [`  [${MARK[d.status]}] ${d.check}: ${d.message}`];
  if (d.status !== 'ok' && d.fix) out.push(`         fix: ${d.fix}`);
  if (d.status !== 'ok' && d.evidence) {
    for (const [k, v] of Object.entries(d.evidence)) {
      // Multi-line evidence (a stderr tail, one served line per probe target) stays indented under its key.
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      out.push(`         ${k}: ${text.split('\n').join(`\n${' '.repeat(11 + k.length)}`)}`);
    }
  }
  return out;
}

/** Human output: issuers first, then each certificate with its diagnoses. */
export function formatDoctorReport(r: DoctorReport): string {
  const out: string[] = [];
  for (const i of r.issuers)
    out.push(`issuer ${i.name} (${i.directoryUrl})`, ...i.diagnoses.flatMap(lines), '');
  for (const c of r.certificates)
    out.push(`certificate ${c.name} (issuer ${c.issuer})`, ...c.diagnoses.flatMap(lines), '');
  const fails = [...r.issuers, ...r.certificates]
    .flatMap((x) => x.diagnoses)
    .filter((d) => d.status === 'fail').length;
  out.push(r.ok ? 'no problems found' : `${fails} problem(s) found`);
  return `${out.join('\n')}\n`;
}
