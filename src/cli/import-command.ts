import type { Command } from 'commander';
import type { CertbotImportResult, UnmappedItem } from '../migrate/certbot-types.ts';
import { clientFor, globalFlags } from './context.ts';
import { printJson, table } from './output.ts';

/** `certfleet import certbot DIR`: reads certbot's directory here, the hub creates the certificates. */
export function registerImportCommand(program: Command): void {
  const imp = program.command('import').description('import certificates from other tools');
  imp
    .command('certbot [dir]')
    .description("import certbot's lineages (current version and key), renewal settings and accounts")
    .option('--dry-run', 'show what would be imported without changing anything')
    .action(async (dir: string | undefined, opts: { dryRun?: boolean }, cmd: Command) => {
      const { readCertbotDirectory } = await import('../migrate/certbot-dir.ts');
      const local = await readCertbotDirectory(dir ?? '/etc/letsencrypt');
      const result = await clientFor(cmd).post<CertbotImportResult>('/api/v1/import/certbot', {
        lineages: local.lineages,
        accounts: local.accounts,
        dryRun: Boolean(opts.dryRun),
      });
      const unmapped: UnmappedItem[] = [...local.problems, ...result.unmapped];
      if (globalFlags(cmd).json) return printJson({ ...result, unmapped });
      process.stdout.write(formatImportResult({ ...result, unmapped }));
    });
}

export function formatImportResult(r: CertbotImportResult): string {
  const out: string[] = [];
  if (r.dryRun) out.push('dry run: nothing was changed\n');
  out.push(
    r.certificates.length
      ? table(
          ['CERTIFICATE', 'STATUS', 'SANS', 'KEY', 'ISSUER', 'EXPIRES', 'FINGERPRINT'],
          r.certificates.map((c) => [
            c.name,
            c.status,
            c.sans.join(','),
            c.keyType,
            c.issuer,
            c.notAfter,
            `sha256:${c.fingerprint.slice(0, 16)}…`,
          ]),
        )
      : 'no certificates found',
  );
  if (r.accounts.length) {
    out.push(
      '',
      table(
        ['ACCOUNT', 'SERVER', 'STATUS', 'ISSUER'],
        r.accounts.map((a) => [a.id, a.server, a.status, a.issuer]),
      ),
    );
  }
  if (r.unmapped.length) {
    out.push('', `not mapped (${r.unmapped.length}):`);
    for (const u of r.unmapped) {
      out.push(`- ${u.lineage ? `${u.lineage}: ` : ''}${u.item}`, `    why: ${u.why}`, `    do:  ${u.fix}`);
    }
  }
  return `${out.join('\n')}\n`;
}
