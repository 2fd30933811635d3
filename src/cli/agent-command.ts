import type { Command } from 'commander';

/**
 * `certfleet agent ...`: the commands an endpoint runs. Subcommands register on the returned parent, so other
 * modules (e.g. the deployer's `agent deploy --dry-run`) add theirs with `agentCommand(program).command(...)`.
 */
export function registerAgentCommands(program: Command): Command {
  const agent = program
    .command('agent')
    .description('run on an endpoint: enroll with the hub, deploy certificates');
  return agent;
}

/** The `agent` parent command, created on first use. */
export function agentCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === 'agent') ?? registerAgentCommands(program);
}
