import type { Command } from 'commander';
import { clientFor, globalFlags } from './context.ts';
import { printJson, relativeTime, table } from './output.ts';

interface CertView {
  name: string;
  sans: string[];
  keyType: string;
  issuer: string;
  lifetimeDays: number;
  current: { serial: string; fingerprint: string; notBefore: string; notAfter: string } | null;
  currentPem?: string | null;
  subscriptions?: Array<{ id: string; endpoint?: string }>;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerCertCommands(program: Command): void {
  const cert = program.command('cert').description('manage certificates');

  cert
    .command('add <name>')
    .description('create a certificate and issue its first version')
    .requiredOption('--san <name>', 'a DNS name or IP address (repeat for more)', collect)
    .option('--key-type <type>', 'ecdsa-p256 | ecdsa-p384 | rsa-2048 | rsa-3072 | rsa-4096', 'ecdsa-p256')
    .option('--issuer <issuer>', 'issuer name (internal or a configured ACME issuer)', 'internal')
    .option('--lifetime-days <days>', 'requested lifetime (internal CA)', (v) => Number(v), 30)
    .action(
      async (
        name: string,
        opts: { san: string[]; keyType: string; issuer: string; lifetimeDays: number },
        cmd: Command,
      ) => {
        const created = await clientFor(cmd).post<CertView>('/api/v1/certificates', {
          name,
          sans: opts.san,
          keyType: opts.keyType,
          issuer: opts.issuer,
          lifetimeDays: opts.lifetimeDays,
        });
        if (globalFlags(cmd).json) return printJson(created);
        process.stdout.write(
          `created certificate ${created.name} (${created.sans.join(', ')}), serial ${created.current?.serial ?? '-'}, expires ${created.current?.notAfter ?? '-'}\n`,
        );
      },
    );

  cert
    .command('list')
    .description('list certificates')
    .action(async (_opts, cmd: Command) => {
      const certs = await clientFor(cmd).get<CertView[]>('/api/v1/certificates');
      if (globalFlags(cmd).json) return printJson(certs);
      process.stdout.write(
        `${table(
          ['NAME', 'SANS', 'KEY', 'ISSUER', 'EXPIRES', 'SERIAL'],
          certs.map((c) => [
            c.name,
            c.sans.join(','),
            c.keyType,
            c.issuer,
            c.current ? `${c.current.notAfter} (${relativeTime(c.current.notAfter)})` : 'not issued',
            c.current?.serial,
          ]),
        )}\n`,
      );
    });

  cert
    .command('show <name>')
    .description('show a certificate')
    .option('--pem', 'print the current chain (leaf + intermediates) as PEM')
    .action(async (name: string, opts: { pem?: boolean }, cmd: Command) => {
      const c = await clientFor(cmd).get<CertView>(`/api/v1/certificates/${encodeURIComponent(name)}`);
      if (opts.pem) {
        if (!c.currentPem) throw new Error(`certificate ${name} has no version yet`);
        return void process.stdout.write(c.currentPem);
      }
      if (globalFlags(cmd).json) return printJson(c);
      const rows: Array<[string, string]> = [
        ['name', c.name],
        ['sans', c.sans.join(', ')],
        ['key type', c.keyType],
        ['issuer', c.issuer],
        ['lifetime', `${c.lifetimeDays} days`],
        ['serial', c.current?.serial ?? '-'],
        ['fingerprint', c.current ? `sha256:${c.current.fingerprint}` : '-'],
        [
          'valid',
          c.current
            ? `${c.current.notBefore} → ${c.current.notAfter} (${relativeTime(c.current.notAfter)})`
            : '-',
        ],
        ['endpoints', (c.subscriptions ?? []).map((s) => s.endpoint).join(', ') || '-'],
      ];
      process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(12)} ${v}`).join('\n')}\n`);
    });

  cert
    .command('renew <name>')
    .description('issue a new version now')
    .action(async (name: string, _opts, cmd: Command) => {
      const v = await clientFor(cmd).post<{ serial: string; notAfter: string }>(
        `/api/v1/certificates/${encodeURIComponent(name)}/renew`,
      );
      if (globalFlags(cmd).json) return printJson(v);
      process.stdout.write(`renewed ${name}: serial ${v.serial}, expires ${v.notAfter}\n`);
    });

  cert
    .command('rm <name>')
    .description('delete a certificate')
    .option('--force', 'also remove its subscriptions')
    .action(async (name: string, opts: { force?: boolean }, cmd: Command) => {
      await clientFor(cmd).delete(
        `/api/v1/certificates/${encodeURIComponent(name)}${opts.force ? '?force=true' : ''}`,
      );
      if (globalFlags(cmd).json) return printJson({ deleted: name });
      process.stdout.write(`deleted certificate ${name}\n`);
    });
}
