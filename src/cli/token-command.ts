import { InvalidArgumentError, Option, type Command } from 'commander';
import { NAME_PATTERN, NAME_RULE } from '../core/names.ts';
import { clientFor, globalFlags } from './context.ts';
import { parseDuration } from './endpoint-command.ts';
import { printJson, relativeTime, table } from './output.ts';

interface TokenView {
  name: string;
  role: 'admin' | 'read';
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

interface IssuedToken {
  token: TokenView;
  secret: string;
}

/** A token name as the hub accepts it; anything else is a usage error (exit 2) before any request. */
function tokenName(value: string): string {
  if (!NAME_PATTERN.test(value)) throw new InvalidArgumentError(`token name "${value}" ${NAME_RULE}`);
  return value;
}

/** `90d`, `12h`, `30m`: at least one minute (the hub's floor), at most ten years. */
function tokenLifetime(value: string): number {
  const seconds = parseDuration(value);
  if (seconds < 60 || seconds > 10 * 366 * 86400) {
    throw new InvalidArgumentError(`"${value}" is outside 1m..3660d (e.g. 90d)`);
  }
  return seconds;
}

const expiresOption = () =>
  new Option('--expires <duration>', 'lifetime, e.g. 90d, 12h (default: never expires)').argParser(
    tokenLifetime,
  );

function printIssued(issued: IssuedToken, what: string): void {
  const { token, secret } = issued;
  process.stdout.write(
    [
      `${what} ${token.role} token "${token.name}" (expires ${token.expiresAt ?? 'never'})`,
      'Secret (shown once, store it now):',
      `  ${secret}`,
      '',
    ].join('\n'),
  );
}

/** `certfleet token ...`: API tokens for people and tools (admin), and for monitoring (read). */
export function registerTokenCommands(program: Command): void {
  const token = program
    .command('token')
    .description('manage API tokens: admin tokens act, read tokens only read (e.g. Prometheus on /metrics)');

  token
    .command('create')
    .description('create an API token and print its secret once')
    .addOption(
      new Option('--role <role>', 'admin: read and change; read: read only')
        .choices(['read', 'admin'])
        .makeOptionMandatory(),
    )
    .option('--name <name>', 'a unique name, recorded in events (default: <role>-<random>)', tokenName)
    .addOption(expiresOption())
    .action(async (opts: { role: 'read' | 'admin'; name?: string; expires?: number }, cmd: Command) => {
      const issued = await clientFor(cmd).post<IssuedToken>('/api/v1/tokens', {
        role: opts.role,
        ...(opts.name ? { name: opts.name } : {}),
        ...(opts.expires ? { expiresInSeconds: opts.expires } : {}),
      });
      if (globalFlags(cmd).json) return printJson(issued);
      printIssued(issued, 'created');
    });

  token
    .command('list')
    .description('list API tokens: name, role, created, expires, last used (never the secret)')
    .action(async (_opts, cmd: Command) => {
      const list = await clientFor(cmd).get<TokenView[]>('/api/v1/tokens');
      if (globalFlags(cmd).json) return printJson(list);
      process.stdout.write(
        `${table(
          ['NAME', 'ROLE', 'CREATED', 'EXPIRES', 'LAST USED'],
          list.map((t) => [
            t.name,
            t.role,
            t.createdAt,
            t.expiresAt ? `${t.expiresAt} (${relativeTime(t.expiresAt)})` : 'never',
            t.lastUsedAt ? relativeTime(t.lastUsedAt) : 'never',
          ]),
        )}\n`,
      );
    });

  token
    .command('revoke')
    .description('revoke an API token: it stops working at once (the last admin token cannot be revoked)')
    .argument('<name>', 'the token name', tokenName)
    .action(async (name: string, _opts, cmd: Command) => {
      await clientFor(cmd).delete(`/api/v1/tokens/${encodeURIComponent(name)}`);
      if (globalFlags(cmd).json) return printJson({ revoked: name });
      process.stdout.write(`revoked token ${name}\n`);
    });

  token
    .command('rotate')
    .description(
      'replace the secret of a token, e.g. `token rotate bootstrap` for the first admin token; the old secret ' +
        'stops working at once (lost every admin token? on the hub machine: certfleet hub reset-admin-token)',
    )
    .argument('<name>', 'the token name', tokenName)
    .addOption(expiresOption().default(undefined, 'as long as the old secret was given'))
    .action(async (name: string, opts: { expires?: number }, cmd: Command) => {
      const issued = await clientFor(cmd).post<IssuedToken>(
        `/api/v1/tokens/${encodeURIComponent(name)}/rotate`,
        opts.expires ? { expiresInSeconds: opts.expires } : {},
      );
      if (globalFlags(cmd).json) return printJson(issued);
      printIssued(issued, 'rotated');
    });
}
