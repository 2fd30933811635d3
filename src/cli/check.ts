/**
 * `certfleet check <host:port>`: one real TLS handshake, then what is served and a verdict with its reason and fix.
 * Exit codes: 0 valid, 1 invalid / expiring within --days / unreachable, 2 usage error.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CertfleetError, errorMessage, isCertfleetError } from '../core/errors.ts';
import type { ProbeTarget } from '../core/types.ts';
import { splitPemCertificates } from '../pki/inspect.ts';
import { DEFAULT_PROBE_TIMEOUT_MS, probeTarget } from '../probe/probe.ts';
import { formatHostPort, type ProbeResult } from '../probe/probe-result.ts';
import { STARTTLS_PROTOCOLS, type StartTlsProtocol } from '../probe/starttls.ts';
import { oneLine } from '../probe/verify-chain.ts';

/**
 * Default for --days: a certificate renewed on schedule (at 2/3 of a 90-day lifetime) has 30 days left, so
 * 14 days left means renewal has been failing for two weeks: worth a non-zero exit. `--days 0` turns it off.
 */
export const DEFAULT_CHECK_DAYS = 14;

export const CHECK_EXIT = { valid: 0, invalid: 1, usage: 2 } as const;

export interface CheckOptions {
  sni?: string;
  starttls?: StartTlsProtocol;
  days?: number;
  caFile?: string;
  allAddresses?: boolean;
  timeout?: number;
  json?: boolean;
}

/** Where the command writes and how it exits; tests capture, the binary uses the process. */
export interface CheckIo {
  out(text: string): void;
  err(text: string): void;
  /** Must not return (process.exit, or throw in tests). */
  exit(code: number): never;
  signal?: AbortSignal;
  now?: () => Date;
}

const processIo: CheckIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  exit: (code) => process.exit(code),
};

const USAGE_HINT = 'write it as host:port, e.g. example.com:443, or [2001:db8::1]:443 for IPv6';

/** Parses "host:port", "[v6]:port"; never throws anything but a CertfleetError. */
export function parseHostPort(input: string): { host: string; port: number } {
  const s = input.trim();
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:(\d*)$/.exec(s);
  if (v6) {
    host = v6[1];
    portText = v6[2];
    if (isIP(host) !== 6)
      throw new CertfleetError('BAD_REQUEST', `"${host}" in "${input}" is not an IPv6 address`, USAGE_HINT);
  } else {
    const i = s.lastIndexOf(':');
    if (i < 0) throw new CertfleetError('BAD_REQUEST', `"${input}" has no port`, USAGE_HINT);
    host = s.slice(0, i);
    portText = s.slice(i + 1);
    if (host.includes(':'))
      throw new CertfleetError(
        'BAD_REQUEST',
        `"${input}" looks like an IPv6 address without brackets`,
        USAGE_HINT,
      );
    if (!/^[A-Za-z0-9._-]+$/.test(host))
      throw new CertfleetError('BAD_REQUEST', `"${host}" is not a valid host name or IP address`, USAGE_HINT);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535)
    throw new CertfleetError(
      'BAD_REQUEST',
      `"${portText}" in "${input}" is not a port (1-65535)`,
      USAGE_HINT,
    );
  return { host, port };
}

function intOption(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

const DAY_MS = 86_400_000;

export function daysLeft(r: ProbeResult, now: Date): number | undefined {
  return r.notAfter ? Math.floor((new Date(r.notAfter).getTime() - now.getTime()) / DAY_MS) : undefined;
}

interface Verdict {
  ok: boolean;
  line: string;
}

function verdictOf(r: ProbeResult, days: number, now: Date): Verdict {
  if (r.error) return { ok: false, line: `INVALID (${r.error.kind}): ${r.error.message}` };
  const left = daysLeft(r, now)!;
  if (days > 0 && left < days)
    return {
      ok: false,
      line:
        `EXPIRING: the certificate expires in ${left} days, within the ${days}-day limit (--days ${days}). ` +
        'Fix: renew it and deploy the new version now, and find out why automatic renewal has not happened',
    };
  const name = r.target.sni ?? r.target.host;
  return { ok: true, line: `VALID: trusted chain, covers "${name}", ${left} days left` };
}

function chainLines(pems: string[]): string[] {
  return pems.map((pem, i) => {
    try {
      const x = new X509Certificate(pem);
      return `  ${i}  ${oneLine(x.subject)}  (issued by ${oneLine(x.issuer)})`;
    } catch {
      return `  ${i}  (unreadable certificate)`;
    }
  });
}

function renderHuman(r: ProbeResult, v: Verdict, now: Date): string {
  const t = r.target;
  const rows: [string, string][] = [];
  rows.push([
    'target',
    `${formatHostPort(t.host, t.port)}${t.sni ? ` (SNI ${t.sni})` : ''}${t.starttls ? ` STARTTLS ${t.starttls}` : ''}`,
  ]);
  if (t.address) rows.push(['address', t.address]);
  if (r.tlsVersion) rows.push(['tls', `${r.tlsVersion}, handshake ${r.handshakeMs} ms`]);
  if (r.fingerprint) {
    rows.push(['subject', r.subject ?? '']);
    rows.push(['sans', (r.sans ?? []).join(', ') || '(none)']);
    rows.push(['issuer', r.issuer ?? '']);
    rows.push(['serial', r.serial ?? '']);
    rows.push(['fingerprint', `sha256 ${r.fingerprint}`]);
    rows.push(['not before', r.notBefore ?? '']);
    rows.push(['not after', `${r.notAfter} (${daysLeft(r, now)} days left)`]);
    rows.push(['hostname', r.hostnameMatches ? 'matches' : 'DOES NOT MATCH']);
    rows.push(['chain', r.chainVerified ? 'verified' : `NOT VERIFIED: ${r.chainError ?? ''}`]);
  }
  const lines = rows.map(([k, v]) => `${k.padEnd(12)} ${v}`);
  if (r.chainPems?.length) lines.push(`chain as sent (${r.chainPems.length}):`, ...chainLines(r.chainPems));
  lines.push(`verdict      ${v.line}`);
  return `${lines.join('\n')}\n`;
}

/** The command's work without commander: probe, print, and say which exit code applies. */
export async function executeCheck(hostPort: string, options: CheckOptions, io: CheckIo): Promise<number> {
  const now = io.now?.() ?? new Date();
  const usage = (e: unknown): number => {
    const ce = isCertfleetError(e)
      ? e
      : new CertfleetError('BAD_REQUEST', errorMessage(e), 'see certfleet check --help');
    if (options.json) io.out(`${JSON.stringify({ ok: false, error: ce.toJSON() }, null, 2)}\n`);
    else io.err(`certfleet check: ${ce.message}${ce.hint ? `\nhint: ${ce.hint}` : ''}\n`);
    return CHECK_EXIT.usage;
  };
  let target: ProbeTarget;
  let trustedRootPems: string[] = [];
  try {
    const { host, port } = parseHostPort(hostPort);
    target = {
      host,
      port,
      ...(options.sni ? { sni: options.sni } : {}),
      ...(options.starttls ? { starttls: options.starttls } : {}),
    };
    if (options.caFile) {
      let text: string;
      try {
        text = await readFile(options.caFile, 'utf8');
      } catch (e) {
        throw new CertfleetError(
          'BAD_REQUEST',
          `cannot read --ca-file ${options.caFile}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`,
          'give the path of a readable PEM file holding the root certificates to trust',
        );
      }
      trustedRootPems = splitPemCertificates(text);
      if (trustedRootPems.length === 0)
        throw new CertfleetError(
          'BAD_REQUEST',
          `--ca-file ${options.caFile} holds no PEM certificate`,
          'give a file with "-----BEGIN CERTIFICATE-----" blocks',
        );
    }
  } catch (e) {
    return usage(e);
  }
  const days = options.days ?? DEFAULT_CHECK_DAYS;
  let results: ProbeResult[];
  try {
    results = await probeTarget(target, {
      trustedRootPems,
      timeoutMs: options.timeout ?? DEFAULT_PROBE_TIMEOUT_MS,
      allAddresses: options.allAddresses,
      signal: io.signal,
      now,
    });
  } catch (e) {
    return usage(e);
  }
  const verdicts = results.map((r) => verdictOf(r, days, now));
  const ok = verdicts.every((v) => v.ok);
  if (options.json) {
    const doc = {
      ok,
      days,
      results: results.map((r, i) => ({ ...r, daysLeft: daysLeft(r, now), verdict: verdicts[i].line })),
    };
    io.out(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    io.out(results.map((r, i) => renderHuman(r, verdicts[i], now)).join('\n'));
  }
  return ok ? CHECK_EXIT.valid : CHECK_EXIT.invalid;
}

/** Adds `check <host:port>` to a commander program. Usage errors exit 2, not commander's default 1. */
export function registerCheckCommand(program: Command, io: CheckIo = processIo): Command {
  const cmd = program
    .command('check')
    .description(
      'connect to host:port, show the certificate it serves, and judge it (exit 0 valid, 1 not, 2 usage)',
    )
    .argument('<host:port>', 'e.g. example.com:443, 10.0.0.5:8443, [::1]:443')
    .option('--sni <name>', 'server name to send and to check the certificate against (default: the host)')
    .addOption(
      new Option('--starttls <protocol>', 'speak this mail protocol before TLS').choices([
        ...STARTTLS_PROTOCOLS,
      ]),
    )
    .option(
      '--days <n>',
      `fail when the certificate expires within n days (0 = only when invalid)`,
      intOption('--days', 0),
      DEFAULT_CHECK_DAYS,
    )
    .option('--ca-file <pem>', 'extra trusted root certificates (PEM), e.g. a private CA')
    .option('--all-addresses', 'check every address the host resolves to (IPv4 and IPv6)')
    .option(
      '--timeout <ms>',
      'per address: connect + STARTTLS + handshake',
      intOption('--timeout', 1),
      DEFAULT_PROBE_TIMEOUT_MS,
    )
    .option('--json', 'print the results as JSON')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride((e) => io.exit(e.exitCode === 0 ? 0 : CHECK_EXIT.usage))
    .action(async (hostPort: string, options: CheckOptions) => {
      let code: number;
      try {
        code = await executeCheck(hostPort, options, io);
      } catch (e) {
        io.err(`certfleet check: ${errorMessage(e)}\n`);
        code = CHECK_EXIT.invalid;
      }
      if (io === processIo) process.exitCode = code;
      else io.exit(code);
    });
  return cmd;
}

class ExitSignal {
  constructor(readonly code: number) {}
}

/** Runs `check` in-process with captured output: `runCheck(['localhost:443', '--json'])`. */
export async function runCheck(
  args: string[],
  opts: { signal?: AbortSignal; now?: () => Date } = {},
): Promise<{ exitCode: number; output: string; stderr: string }> {
  let output = '';
  let stderr = '';
  const io: CheckIo = {
    out: (t) => void (output += t),
    err: (t) => void (stderr += t),
    exit: (code) => {
      throw new ExitSignal(code);
    },
    ...opts,
  };
  const program = new Command('certfleet').exitOverride((e) =>
    io.exit(e.exitCode === 0 ? 0 : CHECK_EXIT.usage),
  );
  program.configureOutput({ writeOut: io.out, writeErr: io.err });
  registerCheckCommand(program, io);
  try {
    await program.parseAsync(['check', ...args], { from: 'user' });
    return { exitCode: 0, output, stderr };
  } catch (e) {
    if (e instanceof ExitSignal) return { exitCode: e.code, output, stderr };
    throw e;
  }
}
