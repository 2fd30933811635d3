import type { Command } from 'commander';
import { DEFAULT_DATA_DIR } from './client.ts';
import { globalFlags, positiveInt } from './context.ts';
import { EXIT, exitWith } from './exit.ts';
import { addLogOptions, logSettings, type LogFlags } from './log-options.ts';
import { printJson, table } from './output.ts';

interface HubFlags extends LogFlags {
  dataDir: string;
  listen: string;
  tls: boolean;
  tlsName?: string[];
  trustedProxy?: string[];
  hubConfig?: string;
  databaseUrl?: string;
}

/** `--database-url`, else CERTFLEET_DATABASE_URL (read here, not as the option's default: help would show it). */
const databaseUrlOf = (flags: HubFlags): string | undefined =>
  flags.databaseUrl ?? (process.env.CERTFLEET_DATABASE_URL || undefined);

export function registerHubCommand(program: Command): void {
  const hubCommand = program
    .command('hub')
    .description('run the hub: API, internal CA, store (SQLite in the data directory, or PostgreSQL)')
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
    .option(
      '--database-url <url>',
      'keep the store in PostgreSQL (postgres://USER:PASSWORD@HOST:PORT/DB) instead of SQLite in the data directory (env CERTFLEET_DATABASE_URL)',
    )
    .option('--no-tls', 'serve plain HTTP (only behind a TLS-terminating proxy; env CERTFLEET_TLS=off)')
    .option(
      '--tls-name <name...>',
      'extra names for the hub certificate (env CERTFLEET_TLS_NAMES, comma-separated)',
    )
    .option(
      '--trusted-proxy <address...>',
      'believe X-Forwarded-For/-Proto from these proxies (IP or CIDR; with --no-tls, the TLS proxy in front; env CERTFLEET_TRUSTED_PROXIES, comma-separated)',
    );
  addLogOptions(hubCommand).action(async (opts: HubFlags) => {
    // Loaded lazily: client commands should not pay for the hub's dependencies.
    const [{ startHub }, { createLogger }, { describeDatabaseUrl }] = await Promise.all([
      import('../hub/hub.ts'),
      import('../core/log.ts'),
      import('../store/postgres/database-url.ts'),
    ]);
    const databaseUrl = databaseUrlOf(opts);
    const hub = await startHub({
      logger: createLogger(logSettings(opts)),
      dataDir: opts.dataDir,
      ...(databaseUrl ? { databaseUrl } : {}),
      listen: opts.listen,
      ...(opts.hubConfig ? { configPath: opts.hubConfig } : {}),
      tls: opts.tls && process.env.CERTFLEET_TLS !== 'off',
      tlsNames: opts.tlsName ?? process.env.CERTFLEET_TLS_NAMES?.split(',').filter(Boolean) ?? [],
      trustedProxies: opts.trustedProxy ?? process.env.CERTFLEET_TRUSTED_PROXIES?.split(',') ?? [],
      // For tests and API work: an answer its response schema would shrink fails instead of losing the field.
      checkResponses: process.env.CERTFLEET_CHECK_RESPONSES === '1',
    });
    // Before the banner: whoever waits for it may signal at once.
    const stop = async (signal: string) => {
      hub.ctx.logger.info({ signal }, 'hub stopping');
      await hub.close();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
    const lines = [
      `certfleet hub listening on ${hub.url}`,
      `  data directory: ${opts.dataDir}`,
      `  store: ${databaseUrl ? `PostgreSQL ${describeDatabaseUrl(databaseUrl)}` : 'SQLite in the data directory'}`,
      `  hub CA: ${opts.dataDir}/ca.pem (sha256 ${hub.caFingerprint})`,
    ];
    if (hub.adminTokenFile) {
      // The token itself is never printed: under systemd stderr is the journal. The file is 0600.
      lines.push(
        '',
        `Admin token created (first start) and written to ${hub.adminTokenFile} (0600).`,
        'Use the CLI with:',
        `  export CERTFLEET_HUB=${hub.url} CERTFLEET_TOKEN="$(cat ${hub.adminTokenFile})" CERTFLEET_CA_FILE=${opts.dataDir}/ca.pem`,
        'Store the token in your secret manager, then delete the file.',
      );
    }
    // For people, on stderr: stdout carries only log lines (JSON when not a terminal).
    process.stderr.write(`${lines.join('\n')}\n`);
  });
  registerResetAdminToken(hubCommand);
  registerCheckStore(hubCommand);
  registerProxyCert(hubCommand);
}

/**
 * `certfleet hub proxy-cert`: the certificate of the TLS-terminating proxy in front of `--no-tls` hubs, issued by
 * the hub CA (agents pin it), written with its chain and key in one file (src/hub/proxy-certificate.ts).
 */
function registerProxyCert(hubCommand: Command): void {
  hubCommand
    .command('proxy-cert')
    .description(
      'write a certificate from the hub CA for the TLS proxy in front of --no-tls hubs (chain and key in one PEM, 0600)',
    )
    .requiredOption('--out <file>', "where to write it (HAProxy's crt file)")
    .requiredOption('--name <name...>', 'DNS names or IP addresses agents use for the proxy (as in --hub)')
    .option('--lifetime-days <days>', 'lifetime', positiveInt, 365)
    .addHelpText(
      'after',
      '\nOptions of `certfleet hub` apply: --data-dir <dir> (env CERTFLEET_DATA_DIR), --database-url <url>\n' +
        '(env CERTFLEET_DATABASE_URL). Needs the master key, like the hub. Keeping it renewed: docs/ha.md.',
    )
    .action(async (sub: { out: string; name: string[]; lifetimeDays: number }, cmd: Command) => {
      const flags = cmd.parent!.opts<HubFlags>();
      const databaseUrl = databaseUrlOf(flags);
      const [{ writeProxyCertificate }, { createLogger }] = await Promise.all([
        import('../hub/proxy-certificate.ts'),
        import('../core/log.ts'),
      ]);
      const written = await writeProxyCertificate({
        dataDir: flags.dataDir,
        ...(databaseUrl ? { databaseUrl } : {}),
        env: process.env,
        logger: createLogger({ destination: process.stderr }),
        names: sub.name,
        lifetimeDays: sub.lifetimeDays,
        out: sub.out,
      });
      if (globalFlags(cmd).json) return printJson(written);
      process.stdout.write(
        `Wrote ${written.path} (0600): certificate for ${written.names.join(', ')} from the hub CA, its chain and ` +
          `its key; valid until ${written.notAfter} (sha256 ${written.fingerprint}).\n`,
      );
    });
}

/**
 * `certfleet hub reset-admin-token`: runs on the hub's machine, against its data directory and master key, not
 * through the API (the lost token is what the API would need). `--data-dir` is the `hub` command's own option:
 * commander hands it to the parent wherever it appears on the line, so the subcommand reads it from there.
 */
function registerResetAdminToken(hubCommand: Command): void {
  hubCommand
    .command('reset-admin-token')
    .description(
      'revoke the bootstrap admin token and print a new one (on the hub machine; needs the master key)',
    )
    .addHelpText(
      'after',
      '\nOptions of `certfleet hub` apply: --data-dir <dir> (env CERTFLEET_DATA_DIR), --database-url <url>\n' +
        '(env CERTFLEET_DATABASE_URL). The master key is read like\n' +
        'the hub reads it: CERTFLEET_MASTER_KEY, else <data-dir>/master.key. Works while the hub runs.',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const flags = cmd.parent!.opts<HubFlags>();
      const { dataDir } = flags;
      const databaseUrl = databaseUrlOf(flags);
      const [{ resetAdminToken }, { createLogger }] = await Promise.all([
        import('../hub/reset-admin-token.ts'),
        import('../core/log.ts'),
      ]);
      // Logs (e.g. permissions fixed) go to stderr: stdout carries only the result.
      const logger = createLogger({ destination: process.stderr });
      const { token, revoked } = await resetAdminToken({
        dataDir,
        ...(databaseUrl ? { databaseUrl } : {}),
        env: process.env,
        logger,
      });
      if (globalFlags(cmd).json) return printJson({ token, revoked });
      process.stdout.write(
        [
          'New admin token (shown once, store it now):',
          `  ${token}`,
          '',
          `Revoked ${revoked} earlier bootstrap admin token${revoked === 1 ? '' : 's'}; a running hub accepts the new one at once.`,
          '',
        ].join('\n'),
      );
    });
}

/**
 * `certfleet hub check-store`: checks a data directory against the catalogue of meta keys and sealed items
 * (src/store/meta-catalogue.ts): every secret unseals, every private key matches its certificate, the CA chain is
 * whole. Reads only; works while the hub runs. Exit 1 when any item fails.
 */
function registerCheckStore(hubCommand: Command): void {
  hubCommand
    .command('check-store')
    .description(
      'check that every sealed secret in the data directory opens and matches (needs the master key)',
    )
    .addHelpText(
      'after',
      '\nOptions of `certfleet hub` apply: --data-dir <dir> (env CERTFLEET_DATA_DIR), --database-url <url>\n' +
        '(env CERTFLEET_DATABASE_URL).',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const flags = cmd.parent!.opts<HubFlags>();
      const { dataDir } = flags;
      const databaseUrl = databaseUrlOf(flags);
      const [{ checkDataDir }, { createLogger }] = await Promise.all([
        import('../hub/store-check.ts'),
        import('../core/log.ts'),
      ]);
      const logger = createLogger({ destination: process.stderr });
      const report = await checkDataDir({
        dataDir,
        ...(databaseUrl ? { databaseUrl } : {}),
        env: process.env,
        logger,
      });
      if (globalFlags(cmd).json) printJson(report);
      else {
        process.stdout.write(
          `${table(
            ['', 'item', 'key', 'detail'],
            report.rows.map((r) => [r.ok ? 'ok' : 'FAILED', r.item, r.key, r.detail]),
          )}\n`,
        );
        const c = report.counts;
        const failed = report.rows.filter((r) => !r.ok).length;
        process.stdout.write(
          `\n${c.metaKeys} meta keys, ${c.certificates} certificates, ${c.versions} versions, ` +
            `${c.acmeAccounts} ACME accounts: ${failed === 0 ? 'all checks passed' : `${failed} failed`}\n`,
        );
      }
      if (!report.ok) exitWith(EXIT.failure);
    });
}
