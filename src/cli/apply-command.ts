import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CertfleetError } from '../core/errors.ts';
import type { FleetConfig } from '../core/config-schema.ts';
import type { PlanStep } from '../hub/apply.ts';
import { clientFor, globalFlags } from './context.ts';
import { printJson, table } from './output.ts';

/** Reads and validates a certfleet.yaml; every problem is reported with its path in the file. */
export async function loadFleetConfig(path: string): Promise<FleetConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new CertfleetError('CONFIG_INVALID', `cannot read ${path}`, 'check the -f path');
  }
  // Loaded here: the YAML parser and the zod schemas are not needed to list commands (`certfleet --help`).
  const [{ parseDocument }, { fleetConfigSchema, formatZodError }] = await Promise.all([
    import('yaml'),
    import('../core/config-schema.ts'),
  ]);
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const line = e.linePos?.[0];
    throw new CertfleetError(
      'CONFIG_INVALID',
      `${path}${line ? `:${line.line}:${line.col}` : ''}: malformed YAML: ${e.message.split('\n')[0]}`,
      'fix the YAML syntax (indentation, quotes, colons) and apply again; nothing was changed',
    );
  }
  const parsed = fleetConfigSchema.safeParse(doc.toJS() ?? {});
  const problems = parsed.success ? await readConnectorRefs(path, parsed.data) : formatZodError(parsed.error);
  if (!parsed.success || problems.length) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `${path} is invalid:\n  ${problems.join('\n  ')}`,
      'fix the file and apply again; nothing was changed',
      {
        details: { problems },
      },
    );
  }
  return parsed.data;
}

/**
 * Reads what each endpoint's connector references (key file, secrets from the environment or files, CA file)
 * into the settings sent to the hub, in place; returns the problems with their paths in the file.
 */
async function readConnectorRefs(path: string, config: FleetConfig): Promise<string[]> {
  const [{ resolveConnectorFile }, { formatIssuePath }] = await Promise.all([
    import('../connectors/connector-file.ts'),
    import('../core/config-schema.ts'),
  ]);
  const problems: string[] = [];
  for (const [i, e] of config.endpoints.entries()) {
    if (!e.connector) continue;
    const r = await resolveConnectorFile(e.connector, { baseDir: dirname(path), env: process.env });
    for (const p of r.problems)
      problems.push(`${formatIssuePath(['endpoints', i, 'connector', ...p.path])}: ${p.message}`);
    if (r.input) e.connector = r.input as typeof e.connector;
  }
  return problems;
}

export function registerApplyCommand(program: Command): void {
  program
    .command('apply')
    .description('create or update certificates, endpoints and subscriptions from a YAML file (idempotent)')
    .requiredOption('-f, --file <path>', 'certfleet.yaml')
    .option('--dry-run', 'print the plan without applying it')
    .action(async (opts: { file: string; dryRun?: boolean }, cmd: Command) => {
      const config = await loadFleetConfig(opts.file);
      const result = await clientFor(cmd).post<{ steps: PlanStep[] }>('/api/v1/apply', {
        config,
        dryRun: Boolean(opts.dryRun),
      });
      // A removal is easy to make by accident (a field left out of the file): say so on stderr, also with --json.
      for (const s of result.steps) {
        for (const field of s.removed ?? []) {
          process.stderr.write(
            `warning: ${s.kind} ${s.name}: ${opts.dryRun ? 'would remove' : 'removed'} ${field} (absent from ${opts.file})\n`,
          );
        }
      }
      if (globalFlags(cmd).json) return printJson(result);
      const changed = result.steps.filter((s) => s.action !== 'unchanged').length;
      process.stdout.write(
        `${table(
          ['ACTION', 'KIND', 'NAME', 'CHANGES'],
          result.steps.map((s) => [
            s.action,
            s.kind,
            s.name,
            [...(s.changes ?? []), ...(s.reissue ? ['reissue'] : [])].join('; '),
          ]),
        )}\n${opts.dryRun ? `dry run: ${changed} change(s) would be made` : `${changed} change(s) applied`}\n`,
      );
    });
}
