import { readFile } from 'node:fs/promises';
import { confirm } from './confirm.ts';
import { InvalidArgumentError, type Command } from 'commander';
import { CertfleetError } from '../core/errors.ts';
import { CONNECTOR_KINDS, FINGERPRINT_RE } from '../connectors/connector-kinds.ts';
import { clientFor, globalFlags } from './context.ts';
import { printJson } from './output.ts';

/** The connector flags of `endpoint add --connector KIND` and `endpoint connector NAME`. */
export interface ConnectorFlags {
  connector?: string | boolean;
  host?: string;
  port?: number;
  user?: string;
  keyFile?: string;
  hostKey?: string;
  connectTimeout?: number;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value) || n < 1 || n > 65535)
    throw new InvalidArgumentError(`"${value}" is not a port`);
  return n;
}

function parseFingerprint(value: string): string {
  if (!FINGERPRINT_RE.test(value)) {
    throw new InvalidArgumentError(
      `"${value}" is not a SHA256 fingerprint such as SHA256:uYx3...Q (ssh-keygen -lf)`,
    );
  }
  return value;
}

export function addConnectorOptions(cmd: Command): Command {
  return cmd
    .option('--host <host>', 'ssh connector: the host to push to')
    .option('--port <port>', 'ssh connector: its sshd port (default 22)', parsePort)
    .option('--user <user>', 'ssh connector: the deploy user (whose key runs the forced command)')
    .option('--key-file <file>', "ssh connector: the deploy user's private key (sealed on the hub)")
    .option('--host-key <SHA256:...>', 'ssh connector: the host key fingerprint to pin', parseFingerprint)
    .option('--connect-timeout <seconds>', 'ssh connector: connect + handshake timeout (default 15)', (v) =>
      parsePort(v),
    );
}

const usage = (message: string, hint: string) => new CertfleetError('VALIDATION_FAILED', message, hint);

/**
 * The API body for the connector flags, checked before anything is sent (so `endpoint add` never leaves a
 * half-configured endpoint behind for a typo); undefined when no connector kind was named.
 */
export async function connectorBody(flags: ConnectorFlags): Promise<Record<string, unknown> | undefined> {
  const sshFlags = (['host', 'port', 'user', 'keyFile', 'hostKey', 'connectTimeout'] as const).filter(
    (f) => flags[f] !== undefined,
  );
  if (typeof flags.connector !== 'string') {
    if (sshFlags.length) {
      throw usage(
        `--${sshFlags[0].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --connector ssh`,
        'e.g. certfleet endpoint add lb1 --connector ssh --host lb1.example.net --user certfleet --key-file ./id_ed25519',
      );
    }
    return undefined;
  }
  const kind = flags.connector;
  if (!(CONNECTOR_KINDS as readonly string[]).includes(kind)) {
    throw usage(`unknown connector kind "${kind}"`, `use one of: ${CONNECTOR_KINDS.join(', ')}`);
  }
  if (kind === 'http') {
    throw usage(
      'an http connector has no flags: its requests are declared as settings',
      'declare the endpoint with `connector: {kind: http, ...}` in a `certfleet apply` file, or PUT /api/v1/endpoints/NAME/connector (docs/connectors.md)',
    );
  }
  if (kind === 'command') {
    if (sshFlags.length)
      throw usage('ssh flags given for a command connector', 'drop them, or use --connector ssh');
    return { kind };
  }
  const missing = (['host', 'user', 'keyFile'] as const).filter((f) => !flags[f]);
  if (missing.length) {
    throw usage(
      `--connector ssh needs ${missing.map((m) => (m === 'keyFile' ? '--key-file' : `--${m}`)).join(', ')}`,
      'e.g. --connector ssh --host lb1.example.net --user certfleet --key-file ./id_ed25519 (docs/connectors.md)',
    );
  }
  let privateKey: string;
  try {
    privateKey = await readFile(flags.keyFile!, 'utf8');
  } catch {
    throw usage(
      `cannot read the key file ${flags.keyFile}`,
      'give the path of the private key (not the .pub)',
    );
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
    throw usage(
      `${flags.keyFile} holds no private key`,
      'give the private key file (e.g. id_ed25519, made with `ssh-keygen -t ed25519 -N ""`), not the .pub',
    );
  }
  return {
    kind,
    host: flags.host,
    user: flags.user,
    privateKey,
    ...(flags.port ? { port: flags.port } : {}),
    ...(flags.hostKey ? { hostKeyFingerprint: flags.hostKey } : {}),
    ...(flags.connectTimeout ? { connectTimeoutSeconds: flags.connectTimeout } : {}),
  };
}

interface ConnectorView {
  kind: string;
  host?: string;
  port?: number;
  user?: string;
  hostKeyFingerprint?: string;
  secrets: string[];
}

export function describeConnector(name: string, v: ConnectorView): string {
  if (v.kind !== 'ssh') return `${name}: ${v.kind} connector\n`;
  return (
    `${name}: ssh connector ${v.user}@${v.host}:${v.port}, host key ${v.hostKeyFingerprint ?? 'NOT PINNED'}\n` +
    (v.hostKeyFingerprint
      ? ''
      : `  nothing is deployed until the host key is pinned: certfleet endpoint trust-host-key ${name}\n`)
  );
}

export function registerConnectorCommands(endpoint: Command): void {
  addConnectorOptions(
    endpoint
      .command('connector <name>')
      .description('set how the hub pushes to a connector endpoint (ssh or command)')
      .requiredOption('--connector <kind>', `connector kind: ${CONNECTOR_KINDS.join(', ')}`),
  ).action(async (name: string, opts: ConnectorFlags, cmd: Command) => {
    const body = (await connectorBody(opts))!;
    const view = await clientFor(cmd).put<ConnectorView>(
      `/api/v1/endpoints/${encodeURIComponent(name)}/connector`,
      body,
    );
    if (globalFlags(cmd).json) return printJson(view);
    process.stdout.write(describeConnector(name, view));
  });

  endpoint
    .command('trust-host-key <name>')
    .description("connect to an ssh connector endpoint, show its host key's fingerprint and pin it")
    .option('--fingerprint <SHA256:...>', 'pin only if the host presents exactly this key', parseFingerprint)
    .option('--yes', 'pin what the host presents without asking')
    .action(async (name: string, opts: { fingerprint?: string; yes?: boolean }, cmd: Command) => {
      const client = clientFor(cmd);
      const path = `/api/v1/endpoints/${encodeURIComponent(name)}/connector`;
      const seen = await client.post<{
        fingerprint: string;
        keyType: string;
        host: string;
        port: number;
        pinned: string | null;
      }>(`${path}/host-key-scan`);
      const json = globalFlags(cmd).json;
      if (!json) {
        process.stderr.write(
          `${seen.host}:${seen.port} presents ${seen.keyType} host key ${seen.fingerprint}\n`,
        );
        if (seen.pinned && seen.pinned !== seen.fingerprint)
          process.stderr.write(`  (pinned now: ${seen.pinned}; pinning replaces it)\n`);
      }
      if (opts.fingerprint && opts.fingerprint !== seen.fingerprint) {
        throw new CertfleetError(
          'HOST_KEY_UNTRUSTED',
          `${seen.host}:${seen.port} presents host key ${seen.fingerprint}, not ${opts.fingerprint}; nothing was pinned`,
          'check which key the host really has (`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on it); someone may be in between',
        );
      }
      if (!opts.fingerprint && !opts.yes) {
        if (!process.stdin.isTTY) {
          throw new CertfleetError(
            'VALIDATION_FAILED',
            `not pinned: confirm ${seen.fingerprint} for ${name}`,
            `compare it with the host's own (\`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub\`), then run again with --fingerprint ${seen.fingerprint} (or --yes)`,
          );
        }
        if (!(await confirm(`pin ${seen.fingerprint} for endpoint ${name}? [y/N] `))) {
          throw new CertfleetError(
            'VALIDATION_FAILED',
            'not pinned',
            'run again and answer y, or pass --fingerprint',
          );
        }
      }
      const view = await client.put<ConnectorView>(`${path}/host-key`, { fingerprint: seen.fingerprint });
      if (json) return printJson({ ...view, pinned: seen.fingerprint });
      process.stdout.write(`pinned host key ${seen.fingerprint} for endpoint ${name}\n`);
    });
}
