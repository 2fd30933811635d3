import { Command, CommanderError } from 'commander';
import { isCertfleetError } from '../core/errors.ts';
import { CommandExit, EXIT } from './exit.ts';
import { registerAlertsCommand } from './alerts-command.ts';
import { registerApplyCommand } from './apply-command.ts';
import { registerCertCommands } from './cert-command.ts';
import { registerCheckCommand } from './check.ts';
import { registerAgentCommands } from './agent-command.ts';
import { registerDeployCommand } from './deploy-command.ts';
import { registerDoctorCommand } from './doctor-command.ts';
import { registerEndpointCommands } from './endpoint-command.ts';
import { registerEventsCommand } from './events-command.ts';
import { registerHubCommand } from './hub-command.ts';
import { registerImportCommand } from './import-command.ts';
import { registerPlanCommand } from './plan-command.ts';
import { registerStatusCommand } from './status-command.ts';
import { registerSubscribeCommand } from './subscribe-command.ts';
import { registerSubscriptionCommands } from './subscription-command.ts';

/** Exit codes: 0 ok, 1 failure, 2 usage (commander's own, and CertfleetError USAGE). */
export function buildProgram(): Command {
  const program = new Command('certfleet')
    .description('issue TLS certificates centrally and get them deployed and served on every endpoint')
    .version('0.1.0')
    .option('--hub <url>', 'hub URL (env CERTFLEET_HUB)')
    .option('--token <token>', 'API token (env CERTFLEET_TOKEN)')
    .option('--ca-file <pem>', "the hub's CA certificate (env CERTFLEET_CA_FILE; default <data-dir>/ca.pem)")
    .option('--config <file>', 'CLI config file with hub, token, caFile (env CERTFLEET_CONFIG)')
    .option('--json', 'machine-readable output')
    .option('--debug', 'print stack traces on errors')
    .showHelpAfterError()
    .exitOverride();
  registerHubCommand(program);
  registerCertCommands(program);
  registerEndpointCommands(program);
  registerSubscribeCommand(program);
  registerSubscriptionCommands(program);
  registerEventsCommand(program);
  registerApplyCommand(program);
  registerStatusCommand(program);
  registerPlanCommand(program);
  registerImportCommand(program);
  registerDoctorCommand(program);
  registerCheckCommand(program);
  registerAgentCommands(program);
  registerAlertsCommand(program);
  registerDeployCommand(program);
  // Usage errors must reach main() as exceptions at every depth, so they exit 2 instead of commander's 1.
  const overrideAll = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(overrideAll);
  };
  overrideAll(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
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
    // A CertfleetError USAGE is a usage error the command found itself (flags that do not go together): exit 2.
    const usage = isCertfleetError(e) && e.code === 'USAGE';
    const debug = argv.includes('--debug');
    const message = isCertfleetError(e) ? e.message : ((e as Error)?.message ?? String(e));
    const hint = isCertfleetError(e) ? e.hint : '';
    process.stderr.write(`error: ${message}\n${hint ? `hint: ${hint}\n` : ''}`);
    if (debug) process.stderr.write(`${(e as Error)?.stack}\n`);
    if (json) printJsonError(isCertfleetError(e) ? e.code : 'INTERNAL', message, hint);
    return usage ? EXIT.usage : EXIT.failure;
  }
}

/** With --json, failures are JSON on stdout too, so a script parsing stdout always gets JSON. */
function printJsonError(code: string, message: string, hint: string): void {
  process.stdout.write(`${JSON.stringify({ error: { code, message, hint } })}\n`);
}

const isEntry =
  process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) {
  const code = await main(process.argv);
  // Long-running commands (hub, agent) keep the process alive; every other command ends here.
  process.exitCode = code;
}
