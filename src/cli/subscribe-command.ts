import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { CertfleetError } from '../core/errors.ts';
import type { OutputSpec } from '../core/types.ts';
import { clientFor, globalFlags } from './context.ts';
import { parseDuration, parseProbeTarget } from './endpoint-command.ts';
import { printJson } from './output.ts';

type OutputFlag = 'owner' | 'group' | 'mode' | 'passwordRef';
const FLAG_NAME: Record<OutputFlag, string> = {
  owner: '--owner',
  group: '--group',
  mode: '--mode',
  passwordRef: '--password-ref',
};

/**
 * The outputs of one `subscribe` invocation. `--output FORMAT:PATH[:OWNER:GROUP:MODE]` starts an output; the
 * per-output flags that follow it (`--owner`, `--group`, `--mode`, `--password-ref`) set that output's fields,
 * so `--output key:/k.pem --mode 0640 --output fullchain:/f.pem` gives the key 0640 and the chain its default.
 */
class OutputsBuilder {
  readonly outputs: Partial<OutputSpec>[] = [];

  add = (value: string): Partial<OutputSpec>[] => {
    const [format, path, owner, group, mode, ...rest] = value.split(':');
    if (!format || !path || rest.length) {
      throw new InvalidArgumentError(
        `"${value}" is not FORMAT:PATH[:OWNER:GROUP:MODE] (e.g. fullchain:/etc/ssl/web.pem)`,
      );
    }
    this.outputs.push({
      format,
      path,
      ...(owner ? { owner } : {}),
      ...(group ? { group } : {}),
      ...(mode ? { mode } : {}),
    });
    return this.outputs;
  };

  /** A parser for one per-output flag: it sets the field on the last `--output` given before it. */
  field =
    (key: OutputFlag) =>
    (value: string): string => {
      const last = this.outputs.at(-1);
      if (!last) {
        throw new InvalidArgumentError(
          `${FLAG_NAME[key]} applies to the --output before it; give --output FORMAT:PATH first`,
        );
      }
      if (last[key] !== undefined) {
        throw new InvalidArgumentError(
          `output ${last.path} already has ${FLAG_NAME[key]} ${last[key]}; give each output its own --output`,
        );
      }
      last[key] = value;
      return value;
    };
}

/** `2h`, `90m` as whole minutes: a change window is scheduled by the minute. */
function parseWindowDuration(value: string): number {
  const seconds = parseDuration(value);
  if (seconds < 60 || seconds % 60 !== 0) {
    throw new InvalidArgumentError(`"${value}" is not a whole number of minutes (e.g. 90m, 2h)`);
  }
  return seconds / 60;
}

function parseVerify(value: string) {
  const target = parseProbeTarget(value)[0];
  if (target.from) {
    throw new InvalidArgumentError(
      `"${value}": a verify target is checked by the agent's deploy and probed by the hub; @${target.from} belongs on the endpoint's probe targets (certfleet endpoint set)`,
    );
  }
  return target;
}

interface SubscribeOpts {
  output?: unknown;
  configTest?: string;
  reload?: string;
  verify?: ReturnType<typeof parseVerify>;
  window?: string;
  windowDuration?: number;
  timezone?: string;
  certbotLineage?: string;
}

/** Flags that only mean something together: a usage error (exit 2) before anything is sent. */
function windowOf(opts: SubscribeOpts) {
  if (opts.window === undefined) {
    if (opts.windowDuration !== undefined || opts.timezone !== undefined) {
      throw new CertfleetError(
        'USAGE',
        `${opts.windowDuration !== undefined ? '--window-duration' : '--timezone'} needs --window`,
        'add --window "CRON" (e.g. --window "0 2 * * 1-5" --window-duration 2h --timezone Europe/Berlin)',
      );
    }
    return undefined;
  }
  if (opts.windowDuration === undefined) {
    throw new CertfleetError(
      'USAGE',
      '--window needs --window-duration (how long each window stays open)',
      'add --window-duration, e.g. --window-duration 2h',
    );
  }
  return { cron: opts.window, durationMinutes: opts.windowDuration, timezone: opts.timezone ?? 'UTC' };
}

export function registerSubscribeCommand(program: Command): void {
  const outputs = new OutputsBuilder();
  program
    .command('subscribe <endpoint> <certificate>')
    .description(
      'subscribe an endpoint to a certificate (creates the subscription, or replaces its whole spec)',
    )
    .option('--output <format:path[:owner:group:mode]>', 'an output file (repeatable)', outputs.add)
    .option('--owner <user>', 'owner of the --output before it', outputs.field('owner'))
    .option('--group <group>', 'group of the --output before it', outputs.field('group'))
    .option('--mode <octal>', 'file mode of the --output before it, e.g. 0640', outputs.field('mode'))
    .option(
      '--password-ref <ref>',
      'password of the pkcs12/jks --output before it: env:NAME or file:/path',
      outputs.field('passwordRef'),
    )
    .option('--config-test <command>', 'command that checks the service config (e.g. "nginx -t")')
    .option('--reload <command>', 'command that reloads the service (e.g. "nginx -s reload")')
    .option('--verify <host:port[/sni]>', 'where the agent checks what is served after a reload', parseVerify)
    .option(
      '--window <cron>',
      'reload only in change windows starting at this cron time (e.g. "0 2 * * 1-5")',
    )
    .option(
      '--window-duration <duration>',
      'how long each window stays open (e.g. 90m, 2h)',
      parseWindowDuration,
    )
    .option('--timezone <iana>', 'time zone of --window (default UTC), e.g. Europe/Berlin')
    .option(
      '--certbot-lineage <dir>',
      'also write cert.pem, privkey.pem, chain.pem, fullchain.pem into DIR; hooks get RENEWED_LINEAGE=DIR',
    )
    .action(async (endpoint: string, certificate: string, opts: SubscribeOpts, cmd: Command) => {
      const window = windowOf(opts);
      const body = {
        endpoint,
        certificate,
        outputs: outputs.outputs,
        ...(opts.configTest ? { configTest: opts.configTest } : {}),
        ...(opts.reload ? { reload: opts.reload } : {}),
        ...(opts.verify ? { verify: opts.verify } : {}),
        ...(window ? { window } : {}),
        ...(opts.certbotLineage !== undefined ? { certbotLineage: opts.certbotLineage } : {}),
      };
      // The hub's own schema, checked here first: a bad value is a usage error naming the field, nothing is sent.
      // Loaded here, not with the command table: `certfleet --help` must not load the schema library.
      const { formatZodError, subscriptionSpecSchema } = await import('../core/config-schema.ts');
      const parsed = subscriptionSpecSchema.safeParse(body);
      if (!parsed.success) {
        throw new CertfleetError(
          'USAGE',
          `the subscription is not valid:\n  ${formatZodError(parsed.error).join('\n  ')}`,
          'fix the flags named above (see `certfleet subscribe --help`); nothing was changed',
        );
      }
      const sub = await clientFor(cmd).post<{ id: string }>('/api/v1/subscriptions', body);
      if (globalFlags(cmd).json) return printJson(sub);
      process.stdout.write(`subscribed ${endpoint} to ${certificate} (subscription ${sub.id})\n`);
    });
}
