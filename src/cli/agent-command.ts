import type { Command } from 'commander';
import { registerAgentDeployCommand } from './agent-deploy-command.ts';
import { CertfleetError } from '../core/errors.ts';
import { globalFlags, positiveInt } from './context.ts';
import { addLogOptions, logSettings, type LogFlags } from './log-options.ts';
import { printJson } from './output.ts';

const DEFAULT_STATE_DIR = process.env.CERTFLEET_AGENT_STATE_DIR ?? '/var/lib/certfleet-agent';

/**
 * `certfleet agent ...`: the commands an endpoint runs. Subcommands register on the returned parent, so other
 * modules (e.g. the deployer's `agent deploy --dry-run`) add theirs with `agentCommand(program).command(...)`.
 */
export function registerAgentCommands(program: Command): Command {
  const agent = program
    .command('agent')
    .description('run on an endpoint: enroll with the hub, deploy certificates');

  agent
    .command('enroll')
    .description(
      "enroll this endpoint: pin the hub CA, create the agent's keys, redeem the one-time token " +
        '(--hub URL --token T: the hub URL and the one-time enrollment token)',
    )
    .requiredOption('--ca-fingerprint <sha256>', "SHA-256 fingerprint of the hub's CA root")
    .option('--state-dir <dir>', 'agent state directory (env CERTFLEET_AGENT_STATE_DIR)', DEFAULT_STATE_DIR)
    .action(async (opts: { caFingerprint: string; stateDir: string }, cmd: Command) => {
      // --hub and --token are the program's global options (commander hands them to the root command); here
      // --token is the one-time enrollment token, never CERTFLEET_TOKEN (an admin token must not go to enrollment).
      const { hub, token } = globalFlags(cmd);
      if (!hub || !token) {
        throw new CertfleetError(
          'VALIDATION_FAILED',
          `agent enroll needs ${!hub ? '--hub' : '--token'}`,
          'run the command printed by `certfleet endpoint enroll-token NAME`',
        );
      }
      const { enrollAgent } = await import('../agent/enroll.ts');
      const identity = await enrollAgent({
        hub,
        token,
        caFingerprint: opts.caFingerprint,
        stateDir: opts.stateDir,
      });
      const result = {
        endpoint: identity.endpointName,
        endpointId: identity.endpointId,
        hub: identity.hub,
        hubs: identity.hubs ?? [identity.hub],
        stateDir: opts.stateDir,
      };
      if (globalFlags(cmd).json) return printJson(result);
      process.stdout.write(
        `enrolled as endpoint ${result.endpoint} (${result.endpointId}) with ${result.hubs.join(', ')}\n` +
          `credentials in ${opts.stateDir} (0600); start the agent with: certfleet agent run --state-dir ${opts.stateDir}\n`,
      );
    });

  const run = agent
    .command('run')
    .description('hold the long-poll on the hub and deploy every new version (runs until SIGTERM)')
    .option('--state-dir <dir>', 'agent state directory (env CERTFLEET_AGENT_STATE_DIR)', DEFAULT_STATE_DIR)
    .option('--long-poll <seconds>', 'how long each long-poll may hold', positiveInt, 25);
  addLogOptions(run).action(async (opts: { stateDir: string; longPoll: number } & LogFlags, cmd: Command) => {
    const [{ AgentRunner }, { createLogger }, { parseHubList }] = await Promise.all([
      import('../agent/run-agent.ts'),
      import('../core/log.ts'),
      import('../agent/hub-list.ts'),
    ]);
    // --hub (global, comma-separated or repeated) replaces the enrolled hub list for this run
    const { hub } = globalFlags(cmd);
    const runner = new AgentRunner({
      stateDir: opts.stateDir,
      longPollSeconds: opts.longPoll,
      logger: createLogger(logSettings(opts)),
      ...(hub ? { hubs: parseHubList(hub) } : {}),
    });
    await runner.start();
    // Before the banner: whoever waits for it may signal at once.
    const stop = async () => {
      await runner.stop();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop());
    process.once('SIGTERM', () => void stop());
    // For people, on stderr: stdout carries only log lines.
    process.stderr.write(`certfleet agent running (state ${opts.stateDir}, endpoint ${runner.endpointId})\n`);
  });

  registerAgentDeployCommand(agent, DEFAULT_STATE_DIR);

  return agent;
}

/** The `agent` parent command, created on first use. */
export function agentCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === 'agent') ?? registerAgentCommands(program);
}
