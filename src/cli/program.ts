import { Command, CommanderError } from 'commander';
import { isCertfleetError } from '../core/errors.ts';
import { CommandExit, EXIT } from './exit.ts';

/** The package version; test/package checks it against package.json. */
export const VERSION = '0.1.0';

/**
 * A `certfleet` program with the global options and no commands yet. Shared by the full CLI (main.ts) and the
 * one-file endpoint agent (agent-main.ts), so both parse flags and print help the same way.
 */
export function createProgram(description: string): Command {
  return new Command('certfleet')
    .description(description)
    .version(VERSION)
    .option(
      '--hub <url>',
      'hub URL (env CERTFLEET_HUB); agent enroll | run: several, comma-separated or repeated, to fail over',
      // repeated flags are joined, so `agent` commands see every URL (the admin CLI takes one)
      (value: string, previous?: string) => (previous ? `${previous},${value}` : value),
    )
    .option('--token <token>', 'API token (env CERTFLEET_TOKEN)')
    .option('--ca-file <pem>', "the hub's CA certificate (env CERTFLEET_CA_FILE; default <data-dir>/ca.pem)")
    .option('--config <file>', 'CLI config file with hub, token, caFile (env CERTFLEET_CONFIG)')
    .option('--json', 'machine-readable output')
    .option('--debug', 'print stack traces on errors')
    .showHelpAfterError()
    .exitOverride();
}

/** Usage errors must reach runProgram() as exceptions at every depth, so they exit 2 instead of commander's 1. */
export function overrideExits(cmd: Command): void {
  cmd.exitOverride();
  cmd.commands.forEach(overrideExits);
}

/** Exit codes: 0 ok, 1 failure, 2 usage (commander's own, and CertfleetError USAGE). Errors print message and hint; a stack trace only with --debug. */
export async function runProgram(program: Command, argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommandExit) return e.code;
    if (e instanceof CommanderError) {
      // Help and version exit 0; everything else commander rejects is a usage error (commander printed it).
      if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') {
        return EXIT.ok;
      }
      if (json) printJsonError('USAGE', e.message.replace(/^error: /, ''), 'see certfleet --help');
      return EXIT.usage;
    }
    const debug = argv.includes('--debug');
    const message = isCertfleetError(e) ? e.message : ((e as Error)?.message ?? String(e));
    const hint = isCertfleetError(e) ? e.hint : '';
    process.stderr.write(`error: ${message}\n${hint ? `hint: ${hint}\n` : ''}`);
    if (debug) process.stderr.write(`${(e as Error)?.stack}\n`);
    if (json) printJsonError(isCertfleetError(e) ? e.code : 'INTERNAL', message, hint);
    // A CertfleetError USAGE is a usage error the command found itself (flags that do not go together): exit 2.
    return isCertfleetError(e) && e.code === 'USAGE' ? EXIT.usage : EXIT.failure;
  }
}

/** With --json, failures are JSON on stdout too, so a script parsing stdout always gets JSON. */
function printJsonError(code: string, message: string, hint: string): void {
  process.stdout.write(`${JSON.stringify({ error: { code, message, hint } })}\n`);
}
