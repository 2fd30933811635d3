import type { Command } from 'commander';
import { DEFAULT_DATA_DIR } from './client.ts';

export function registerHubCommand(program: Command): void {
  program
    .command('hub')
    .description('run the hub: API, internal CA, store (SQLite in the data directory)')
    .option(
      '--data-dir <dir>',
      'data directory (env CERTFLEET_DATA_DIR)',
      process.env.CERTFLEET_DATA_DIR ?? DEFAULT_DATA_DIR,
    )
    .option(
      '--listen <host:port>',
      'address to listen on (env CERTFLEET_LISTEN)',
      process.env.CERTFLEET_LISTEN ?? '127.0.0.1:8443',
    )
    .option(
      '--hub-config <file>',
      'hub settings: issuers, planner, probes, alerts (env CERTFLEET_HUB_CONFIG)',
      process.env.CERTFLEET_HUB_CONFIG,
    )
    .option('--no-tls', 'serve plain HTTP (only behind a TLS-terminating proxy; env CERTFLEET_TLS=off)')
    .option(
      '--tls-name <name...>',
      'extra names for the hub certificate (env CERTFLEET_TLS_NAMES, comma-separated)',
    )
    .action(
      async (opts: {
        dataDir: string;
        listen: string;
        tls: boolean;
        tlsName?: string[];
        hubConfig?: string;
      }) => {
        // Loaded lazily: client commands should not pay for the hub's dependencies.
        const { startHub } = await import('../hub/hub.ts');
        const hub = await startHub({
          dataDir: opts.dataDir,
          listen: opts.listen,
          ...(opts.hubConfig ? { configPath: opts.hubConfig } : {}),
          tls: opts.tls && process.env.CERTFLEET_TLS !== 'off',
          tlsNames: opts.tlsName ?? process.env.CERTFLEET_TLS_NAMES?.split(',').filter(Boolean) ?? [],
        });
        const lines = [
          `certfleet hub listening on ${hub.url}`,
          `  data directory: ${opts.dataDir}`,
          `  hub CA: ${opts.dataDir}/ca.pem (sha256 ${hub.caFingerprint})`,
        ];
        if (hub.adminToken) {
          lines.push(
            '',
            'Admin token (shown once, store it now):',
            `  ${hub.adminToken}`,
            '',
            'Use the CLI with:',
            `  export CERTFLEET_HUB=${hub.url} CERTFLEET_TOKEN=${hub.adminToken} CERTFLEET_CA_FILE=${opts.dataDir}/ca.pem`,
          );
        }
        process.stdout.write(`${lines.join('\n')}\n`);
        const stop = async (signal: string) => {
          hub.ctx.logger.info({ signal }, 'hub stopping');
          await hub.close();
          process.exit(0);
        };
        process.once('SIGINT', () => void stop('SIGINT'));
        process.once('SIGTERM', () => void stop('SIGTERM'));
      },
    );
}
