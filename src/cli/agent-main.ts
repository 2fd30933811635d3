/**
 * The one-file endpoint agent (`npm run build:agent` → dist/certfleet-agent.mjs): `certfleet agent enroll | run |
 * deploy --dry-run` and `certfleet --version`, the same command lines as the full CLI, so the enroll command the hub
 * prints and the systemd unit's `certfleet agent run` work with either. It imports nothing of the hub and no native
 * module, so esbuild bundles it whole and it runs on a stock Node ≥ 20 with no node_modules.
 */
import { registerAgentCommands } from './agent-command.ts';
import { createProgram, overrideExits, runProgram } from './program.ts';

const program = createProgram(
  'the certfleet agent: enroll this endpoint with its hub, deploy its certificates',
);
registerAgentCommands(program);
overrideExits(program);
// Like bin/certfleet.js: `agent run` keeps the event loop alive; every other command ends with this code.
process.exitCode = await runProgram(program, process.argv);
