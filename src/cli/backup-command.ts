import type { Command } from 'commander';
import type { OpenWith, SealTo } from '../backup/age-crypt.ts';
import type { StoreCheckReport } from '../hub/store-check.ts';
import { DEFAULT_DATA_DIR } from './client.ts';
import { globalFlags } from './context.ts';
import { EXIT, exitWith } from './exit.ts';
import { printJson, table } from './output.ts';

interface KeyFlags {
  recipient?: string[];
  identity?: string[];
  passphraseFile?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * `certfleet backup create|verify|restore`: encrypted backups of a hub data directory in the age format (see
 * docs/backup.md). Runs on the hub's machine against its data directory; `create` works while the hub runs.
 */
export function registerBackupCommand(program: Command): void {
  const backup = program
    .command('backup')
    .description('encrypted backups of the hub (age format): create, verify by restoring, restore');

  backup
    .command('create')
    .description(
      'snapshot the store (while the hub runs), its master key and the hub config into one age file',
    )
    .requiredOption('--out <file>', 'backup file to write (atomically, mode 0600)')
    .option('--recipient <age1...>', 'age public key to encrypt to (repeatable)', collect)
    .option('--passphrase-file <file>', 'encrypt with the passphrase on the first line of this file (scrypt)')
    .option(
      '--data-dir <dir>',
      'hub data directory (env CERTFLEET_DATA_DIR)',
      process.env.CERTFLEET_DATA_DIR ?? DEFAULT_DATA_DIR,
    )
    .option(
      '--hub-config <file>',
      'hub config to include (env CERTFLEET_HUB_CONFIG)',
      process.env.CERTFLEET_HUB_CONFIG,
    )
    .action(async (opts: KeyFlags & { out: string; dataDir: string; hubConfig?: string }, cmd: Command) => {
      const sealTo = await sealToFrom(opts, cmd);
      const [{ createBackup }, { createLogger }, { systemClock }] = await Promise.all([
        import('../backup/create-backup.ts'),
        import('../core/log.ts'),
        import('../core/clock.ts'),
      ]);
      const { manifest, bytes } = await createBackup({
        dataDir: opts.dataDir,
        out: opts.out,
        sealTo,
        ...(opts.hubConfig ? { hubConfigPath: opts.hubConfig } : {}),
        env: process.env,
        clock: systemClock,
        logger: createLogger({
          destination: process.stderr,
          level: process.env.CERTFLEET_LOG_LEVEL ?? 'warn',
        }),
      });
      if (globalFlags(cmd).json) return printJson({ file: opts.out, bytes, manifest });
      const c = manifest.counts;
      process.stdout.write(
        `backup written to ${opts.out} (${bytes} bytes, ${'passphrase' in sealTo ? 'passphrase' : `${sealTo.recipients.length} recipient(s)`})\n` +
          `  ${c.certificates} certificates, ${c.versions} versions, ${c.acmeAccounts} ACME accounts, ${c.metaKeys} meta keys; ` +
          `schema ${manifest.schema.migrations.at(-1)}; master key (from ${manifest.masterKeySource})` +
          `${manifest.parts.some((p) => p.name === 'hub.yaml') ? '; hub config' : ''}\n` +
          `keep the identity or passphrase that opens it somewhere else than the backup; prove it: certfleet backup verify ${opts.out} ...\n`,
      );
    });

  backup
    .command('verify <file>')
    .description(
      'decrypt, restore into a temporary directory, check every sealed item; exit 1 on any failure',
    )
    .option('--identity <file>', 'age identity file (repeatable)', collect)
    .option('--passphrase-file <file>', 'the passphrase the backup was made with, on the first line')
    .action(async (file: string, opts: KeyFlags, cmd: Command) => {
      const using = await openWithFrom(opts, cmd);
      const [{ verifyBackup }, logger] = await Promise.all([
        import('../backup/restore-backup.ts'),
        cliLogger(),
      ]);
      const { manifest, report } = await verifyBackup({ file, using, logger });
      if (globalFlags(cmd).json) printJson({ manifest, ...report });
      else printReport(report, `backup of ${manifest.createdAt} (certfleet ${manifest.certfleetVersion})`);
      if (!report.ok) exitWith(EXIT.failure);
    });

  backup
    .command('restore <file>')
    .description('restore into a new data directory, atomically; refuses a non-empty one without --force')
    .requiredOption('--data-dir <dir>', 'data directory to create')
    .option('--identity <file>', 'age identity file (repeatable)', collect)
    .option('--passphrase-file <file>', 'the passphrase the backup was made with, on the first line')
    .option('--force', 'move a non-empty --data-dir aside (kept as <dir>.before-restore-<time>) and restore')
    .action(async (file: string, opts: KeyFlags & { dataDir: string; force?: boolean }, cmd: Command) => {
      const using = await openWithFrom(opts, cmd);
      const [{ restoreBackup }, logger, { systemClock }] = await Promise.all([
        import('../backup/restore-backup.ts'),
        cliLogger(),
        import('../core/clock.ts'),
      ]);
      const result = await restoreBackup({
        file,
        dataDir: opts.dataDir,
        using,
        force: opts.force === true,
        clock: systemClock,
        logger,
      });
      const { report } = result;
      if (globalFlags(cmd).json) printJson({ ok: report.ok, ...result });
      else {
        printReport(report, `backup of ${result.manifest.createdAt}`);
        process.stdout.write(
          report.ok
            ? `restored into ${result.dataDir}` +
                `${result.movedAside ? `; the directory that was there is kept at ${result.movedAside}` : ''}\n` +
                `start the hub with: certfleet hub --data-dir ${result.dataDir}` +
                `${result.hubConfigPath ? ` --hub-config ${result.hubConfigPath}` : ''}\n` +
                'agents keep their enrollment; if the hub URL changed, set "hub" in each agent\'s <state-dir>/agent.json (see docs/backup.md)\n'
            : `nothing was restored: ${result.dataDir} is as it was\n`,
        );
      }
      if (!report.ok) exitWith(EXIT.failure);
    });
}

async function cliLogger() {
  const { createLogger } = await import('../core/log.ts');
  return createLogger({ destination: process.stderr, level: process.env.CERTFLEET_LOG_LEVEL ?? 'warn' });
}

function printReport(report: StoreCheckReport, title: string): void {
  const failed = report.rows.filter((r) => !r.ok).length;
  const c = report.counts;
  process.stdout.write(
    `${title}\n${table(
      ['', 'item', 'key', 'detail'],
      report.rows.map((r) => [r.ok ? 'ok' : 'FAILED', r.item, r.key, r.detail]),
    )}\n\n${c.metaKeys} meta keys, ${c.certificates} certificates, ${c.versions} versions, ${c.acmeAccounts} ACME accounts: ` +
      `${failed === 0 ? 'all checks passed' : `${failed} failed`}\n`,
  );
}

/** Exactly one of --recipient… or --passphrase-file; anything else is a usage error (exit 2). */
async function sealToFrom(opts: KeyFlags, cmd: Command): Promise<SealTo> {
  const recipients = opts.recipient ?? [];
  if (recipients.length > 0 === Boolean(opts.passphraseFile)) {
    cmd.error('error: pass either --recipient AGE_PUBLIC_KEY (repeatable) or --passphrase-file FILE', {
      exitCode: EXIT.usage,
      code: 'certfleet.usage',
    });
  }
  if (!opts.passphraseFile) return { recipients };
  const { readPassphraseFile } = await import('../backup/age-crypt.ts');
  return { passphrase: await readPassphraseFile(opts.passphraseFile) };
}

/** Exactly one of --identity… or --passphrase-file. */
async function openWithFrom(opts: KeyFlags, cmd: Command): Promise<OpenWith> {
  const identities = opts.identity ?? [];
  if (identities.length > 0 === Boolean(opts.passphraseFile)) {
    cmd.error('error: pass either --identity FILE (an age identity) or --passphrase-file FILE', {
      exitCode: EXIT.usage,
      code: 'certfleet.usage',
    });
  }
  const { readIdentityFile, readPassphraseFile } = await import('../backup/age-crypt.ts');
  if (opts.passphraseFile) return { passphrase: await readPassphraseFile(opts.passphraseFile) };
  return { identities: (await Promise.all(identities.map(readIdentityFile))).flat() };
}
