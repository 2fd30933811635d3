import { Option, type Command } from 'commander';

/** pino's levels; `silent` logs nothing. Kept here (not imported from pino) so the CLI loads no logger to parse. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LogFlags {
  logFormat?: 'json' | 'pretty';
  logLevel?: string;
}

/** Adds `--log-format` and `--log-level` (with their environment variables) to a long-running command. */
export function addLogOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--log-format <format>',
        'log lines on stdout: json (one object a line) or pretty (default: pretty when stdout is a terminal, else json)',
      )
        .choices(['json', 'pretty'])
        .env('CERTFLEET_LOG_FORMAT'),
    )
    .addOption(
      new Option('--log-level <level>', 'least severe level logged (default: info)')
        .choices(LOG_LEVELS)
        .env('CERTFLEET_LOG_LEVEL'),
    );
}

/**
 * The logger settings of a command. Logs go to stdout, so stdout decides the default format: `certfleet hub | jq`
 * and journald get JSON, a terminal gets readable lines. Banners for people go to stderr and never into the log.
 */
export function logSettings(flags: LogFlags): { format: 'json' | 'pretty'; level: string } {
  return {
    format: flags.logFormat ?? (process.stdout.isTTY ? 'pretty' : 'json'),
    level: flags.logLevel ?? 'info',
  };
}
