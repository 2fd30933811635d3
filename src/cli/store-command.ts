import type { Command } from 'commander';
import { CertfleetError } from '../core/errors.ts';
import { globalFlags } from './context.ts';
import { printJson, table } from './output.ts';

const FROM_HINT = 'pass --from sqlite:DATA_DIR, the data directory holding hub.db';

/**
 * `certfleet store migrate --from sqlite:DATA_DIR --to postgres://…`: moves a hub's store from its SQLite file into
 * an empty PostgreSQL database (src/store/postgres/copy-sqlite-to-postgres.ts). Runs on the hub machine, offline:
 * stop the hub first, then start it again with --database-url.
 */
export function registerStoreCommand(program: Command): void {
  const store = program.command('store').description("move a hub's store between databases");
  store
    .command('migrate')
    .description('copy a hub store from SQLite into an empty PostgreSQL database, in one transaction')
    .requiredOption('--from <source>', 'sqlite:DATA_DIR (the hub data directory holding hub.db)')
    .requiredOption('--to <url>', 'postgres://USER:PASSWORD@HOST:PORT/DATABASE (an empty database)')
    .addHelpText(
      'after',
      '\nStop the hub first. The master key and ca.pem stay in the data directory; afterwards start the hub with\n' +
        '--data-dir DATA_DIR --database-url URL. The SQLite file is left as it was (a fallback until you delete it).',
    )
    .action(async (opts: { from: string; to: string }, cmd: Command) => {
      const [{ copySqliteToPostgres }, { parseDatabaseUrl, describeDatabaseUrl }, { existsSync }, { join }] =
        await Promise.all([
          import('../store/postgres/copy-sqlite-to-postgres.ts'),
          import('../store/postgres/database-url.ts'),
          import('node:fs'),
          import('node:path'),
        ]);
      const m = /^sqlite:(.+)$/.exec(opts.from);
      if (!m) throw new CertfleetError('USAGE', `unsupported source "${opts.from}"`, FROM_HINT);
      const file = join(m[1], 'hub.db');
      if (!existsSync(file)) throw new CertfleetError('NOT_FOUND', `no hub store at ${file}`, FROM_HINT);
      parseDatabaseUrl(opts.to);
      const started = performance.now();
      const { counts } = await copySqliteToPostgres(file, opts.to);
      const seconds = (performance.now() - started) / 1000;
      if (globalFlags(cmd).json) return printJson({ counts, seconds });
      process.stdout.write(
        `${table(
          ['table', 'rows'],
          Object.entries(counts).map(([t, n]) => [t, n]),
        )}\n\ncopied ${file} to PostgreSQL ${describeDatabaseUrl(opts.to)} in ${seconds.toFixed(1)} s; ` +
          'every table count matches the source.\n' +
          `Start the hub with: certfleet hub --data-dir ${m[1]} --database-url <the URL>\n`,
      );
    });
}
