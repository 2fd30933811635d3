import { Option, type Command } from 'commander';
import type { AuditEvent } from '../core/types.ts';
import { clientFor, globalFlags, positiveInt } from './context.ts';
import { printJson, table } from './output.ts';

export function registerEventsCommand(program: Command): void {
  program
    .command('events')
    .description('show the audit log, oldest first (the latest --limit events, or a page before/after an ID)')
    .option('--subject <subject>', 'only events about this subject, e.g. certificate:web')
    .option('--kind <prefix>', 'only events whose kind starts with this, e.g. version.')
    .option('--limit <n>', 'how many events', positiveInt, 50)
    .addOption(
      new Option('--before <id>', 'the page of events older than this ID (the first ID shown pages back)')
        .argParser(positiveInt)
        .conflicts('after'),
    )
    .option('--after <id>', 'the page of events newer than this ID (the last ID shown pages on)', positiveInt)
    .action(
      async (
        opts: { subject?: string; kind?: string; limit: number; before?: number; after?: number },
        cmd: Command,
      ) => {
        const q = new URLSearchParams({ limit: String(opts.limit) });
        if (opts.subject) q.set('subject', opts.subject);
        if (opts.kind) q.set('kind', opts.kind);
        if (opts.before !== undefined) q.set('before', String(opts.before));
        if (opts.after !== undefined) q.set('after', String(opts.after));
        const events = await clientFor(cmd).get<AuditEvent[]>(`/api/v1/events?${q}`);
        if (globalFlags(cmd).json) return printJson(events);
        process.stdout.write(
          `${table(
            ['ID', 'TIME', 'ACTOR', 'EVENT', 'SUBJECT', 'DETAILS'],
            events.map((e) => [String(e.id), e.at, e.actor, e.kind, e.subject, summarize(e.data)]),
          )}\n`,
        );
      },
    );
}

function summarize(data: Record<string, unknown>): string {
  return Object.entries(data)
    .filter(([, v]) => v !== null && typeof v !== 'object')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ')
    .slice(0, 120);
}
