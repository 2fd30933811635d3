import type { Command } from 'commander';
import { createProgram, overrideExits, runProgram } from './program.ts';

type Register = (program: Command) => unknown;

// Each module registers its commands; it is imported only when one of them runs, so `certfleet cert list` never
// loads the hub (fastify, kysely, acme-client, pkijs). Keep command modules' own top-level imports light too:
// `certfleet --help` loads them all. One loader per module, listed under every top-level name it registers.
const hub = async (): Promise<Register> => (await import('./hub-command.ts')).registerHubCommand;
const cert = async (): Promise<Register> => (await import('./cert-command.ts')).registerCertCommands;
const endpoint = async (): Promise<Register> =>
  (await import('./endpoint-command.ts')).registerEndpointCommands;
const subscribe = async (): Promise<Register> =>
  (await import('./subscribe-command.ts')).registerSubscribeCommand;
const events = async (): Promise<Register> => (await import('./events-command.ts')).registerEventsCommand;
const apply = async (): Promise<Register> => (await import('./apply-command.ts')).registerApplyCommand;
const status = async (): Promise<Register> => (await import('./status-command.ts')).registerStatusCommand;
const plan = async (): Promise<Register> => (await import('./plan-command.ts')).registerPlanCommand;
const importCmd = async (): Promise<Register> => (await import('./import-command.ts')).registerImportCommand;
const doctor = async (): Promise<Register> => (await import('./doctor-command.ts')).registerDoctorCommand;
const check = async (): Promise<Register> => (await import('./check.ts')).registerCheckCommand;
const agent = async (): Promise<Register> => (await import('./agent-command.ts')).registerAgentCommands;
const alerts = async (): Promise<Register> => (await import('./alerts-command.ts')).registerAlertsCommand;
const deploy = async (): Promise<Register> => (await import('./deploy-command.ts')).registerDeployCommand;
const subscription = async (): Promise<Register> =>
  (await import('./subscription-command.ts')).registerSubscriptionCommands;
const token = async (): Promise<Register> => (await import('./token-command.ts')).registerTokenCommands;
const store = async (): Promise<Register> => (await import('./store-command.ts')).registerStoreCommand;
const emergency = async (): Promise<Register> =>
  (await import('./emergency-command.ts')).registerEmergencyCommands;
const backup = async (): Promise<Register> => (await import('./backup-command.ts')).registerBackupCommand;
const rehearse = async (): Promise<Register> =>
  (await import('./rehearse-command.ts')).registerRehearseCommand;

/** Top-level command name → the loader of the module that registers it, in the order `--help` lists them. */
export const COMMANDS: Record<string, () => Promise<Register>> = {
  hub,
  cert,
  renew: cert,
  endpoint,
  subscribe,
  subscription,
  events,
  apply,
  status,
  plan,
  import: importCmd,
  doctor,
  check,
  agent,
  alerts,
  deploy,
  token,
  store,
  backup,
  emergency,
  rehearse,
};

/**
 * The first argument that is not a global option (or its value): the command to run; `null` for the program's
 * `--version`, which needs no command.
 */
function commandName(program: Command, args: string[]): string | null | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') return args[i + 1];
    if (arg === '--help' || arg === '-h') return undefined; // the program's help, listing every command
    if (arg === '--version' || arg === '-V') return null;
    if (!arg.startsWith('-')) return arg;
    if (program.options.find((o) => o.long === arg || o.short === arg)?.required) i++;
  }
  return undefined;
}

/**
 * The program for `argv`: only the module of the command it names, or every command (for `--help`, `help`, no
 * command, or a name to suggest a correction for). Without `argv`, every command.
 */
export async function buildProgram(argv?: string[]): Promise<Command> {
  const program = createProgram(
    'issue TLS certificates centrally and get them deployed and served on every endpoint',
  );
  const name = argv && commandName(program, argv.slice(2));
  const loaders =
    name === null ? [] : name && Object.hasOwn(COMMANDS, name) ? [COMMANDS[name]] : Object.values(COMMANDS);
  const registers = await Promise.all([...new Set(loaders)].map((load) => load()));
  for (const register of registers) register(program);
  overrideExits(program);
  return program;
}

/** Exit codes: 0 ok, 1 failure, 2 usage. */
export async function main(argv: string[]): Promise<number> {
  return runProgram(await buildProgram(argv), argv);
}

const isEntry =
  process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) {
  const code = await main(process.argv);
  // Long-running commands (hub, agent) keep the process alive; every other command ends here.
  process.exitCode = code;
}
