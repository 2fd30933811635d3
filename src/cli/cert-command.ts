import type { Command } from 'commander';
import { CertfleetError, type ErrorCode } from '../core/errors.ts';
import { clientFor, globalFlags, positiveInt } from './context.ts';
import { printJson, relativeTime, table } from './output.ts';

interface CertView {
  name: string;
  sans: string[];
  keyType: string;
  issuer: string;
  lifetimeDays: number;
  profile?: string;
  current: { serial: string; fingerprint: string; notBefore: string; notAfter: string } | null;
  currentPem?: string | null;
  subscriptions?: Array<{ id: string; endpoint?: string }>;
}

interface DryRunView {
  ok: boolean;
  certificate: string;
  issuer: string;
  directoryUrl?: string;
  steps: Array<{ name: string; detail: string; ms: number }>;
  totalMs: number;
  issued?: { serial: string };
  error?: { code: string; message: string; hint: string };
}

interface RevokeView {
  revoked: { serial: string; reason: string };
  note?: string;
  renewed?: { serial: string; notAfter: string };
  renewalError?: { code: string; message: string; hint: string };
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
    .option('--lifetime-days <days>', 'requested lifetime (internal CA)', positiveInt, 30)
    .option('--profile <name>', 'ACME profile to order under, e.g. shortlived (ACME issuers only)')
    .action(
      async (
        name: string,
        opts: { san: string[]; keyType: string; issuer: string; lifetimeDays: number; profile?: string },
        cmd: Command,
      ) => {
        const created = await clientFor(cmd).post<CertView>('/api/v1/certificates', {
          name,
          sans: opts.san,
          keyType: opts.keyType,
          issuer: opts.issuer,
          lifetimeDays: opts.lifetimeDays,
          ...(opts.profile !== undefined ? { profile: opts.profile } : {}),
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
      const certs = await clientFor(cmd).getAll<CertView>('/api/v1/certificates');
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
        ['profile', c.profile ?? '(issuer default)'],
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

  const renew = async (name: string, opts: { dryRun?: boolean }, cmd: Command) => {
    const client = clientFor(cmd);
    const path = `/api/v1/certificates/${encodeURIComponent(name)}/renew`;
    if (!opts.dryRun) {
      const v = await client.post<{ serial: string; notAfter: string }>(path);
      if (globalFlags(cmd).json) return printJson(v);
      return void process.stdout.write(`renewed ${name}: serial ${v.serial}, expires ${v.notAfter}\n`);
    }
    const r = await client.post<DryRunView>(`${path}?dryRun=true`);
    if (globalFlags(cmd).json) printJson(r);
    else {
      process.stdout.write(
        `dry run of ${r.certificate} against ${r.directoryUrl ?? `issuer ${r.issuer}`} (nothing is stored)\n`,
      );
      process.stdout.write(
        `${table(
          ['STEP', 'MS', 'DETAIL'],
          r.steps.map((s) => [s.name, s.ms, s.detail]),
        )}\n`,
      );
      if (r.ok) process.stdout.write(`ok in ${r.totalMs} ms: would issue serial ${r.issued?.serial}\n`);
    }
    if (!r.ok && r.error) throw new CertfleetError(r.error.code as ErrorCode, r.error.message, r.error.hint);
  };

  cert
    .command('renew <name>')
    .description('issue a new version now (--dry-run: run the whole order against staging, store nothing)')
    .option('--dry-run', 'run the order against the staging directory (or the same one) and report each step')
    .action(renew);
  program
    .command('renew <name>')
    .description('same as `cert renew`')
    .option('--dry-run', 'run the order against the staging directory (or the same one) and report each step')
    .action(renew);

  cert
    .command('revoke <name>')
    .description('revoke the current version, then issue a replacement')
    .option(
      '--reason <reason>',
      'unspecified | keyCompromise | cACompromise | affiliationChanged | superseded | cessationOfOperation | privilegeWithdrawn',
      'unspecified',
    )
    .action(async (name: string, opts: { reason: string }, cmd: Command) => {
      const r = await clientFor(cmd).post<RevokeView>(
        `/api/v1/certificates/${encodeURIComponent(name)}/revoke`,
        {
          reason: opts.reason,
        },
      );
      if (globalFlags(cmd).json) return printJson(r);
      process.stdout.write(`revoked ${name}: serial ${r.revoked.serial} (${r.revoked.reason})\n`);
      if (r.note) process.stdout.write(`note: ${r.note}\n`);
      if (r.renewed)
        process.stdout.write(`replaced by serial ${r.renewed.serial}, expires ${r.renewed.notAfter}\n`);
      if (r.renewalError)
        throw new CertfleetError(
          r.renewalError.code as ErrorCode,
          `revoked, but the replacement failed: ${r.renewalError.message}`,
          r.renewalError.hint,
        );
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
