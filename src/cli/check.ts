/**
 * `certfleet check <host:port>`: one real TLS handshake, then what is served and a verdict with its reason and fix,
 * judged like the hub's probes (src/pki/judge-chain.ts). Trusts the system roots plus --ca-file, NODE_EXTRA_CA_CERTS
 * and SSL_CERT_FILE. --ca-file and --json are the program's global options (read with optsWithGlobals), never
 * options of this command, so they work in any position.
 * Exit codes: 0 valid, 1 invalid / expiring within --days / unreachable, 2 usage error.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CertfleetError, errorMessage, isCertfleetError } from '../core/errors.ts';
import type { ProbeTarget } from '../core/types.ts';
import { DEFAULT_PROBE_TIMEOUT_MS, formatHostPort } from '../probe/probe-basics.ts';
import type { ProbeResult } from '../probe/probe-result.ts';
import { STARTTLS_PROTOCOLS, type StartTlsProtocol } from '../probe/starttls.ts';
import { globalFlags } from './context.ts';
import { EXIT, exitWith } from './exit.ts';

/**
 * Default for --days: a certificate renewed on schedule (at 2/3 of a 90-day lifetime) has 30 days left, so
 * 14 days left means renewal has been failing for two weeks: worth a non-zero exit. `--days 0` turns it off.
 */
export const DEFAULT_CHECK_DAYS = 14;

export const CHECK_EXIT = { valid: EXIT.ok, invalid: EXIT.failure, usage: EXIT.usage } as const;

export interface CheckOptions {
  sni?: string;
  starttls?: StartTlsProtocol;
  days?: number;
  /** Extra trusted roots (the global --ca-file). */
  caFile?: string;
  allAddresses?: boolean;
  timeout?: number;
  /** The global --json. */
  json?: boolean;
}

/** Where the command writes; tests capture, the binary uses the process. */
export interface CheckIo {
  out(text: string): void;
  err(text: string): void;
  signal?: AbortSignal;
  now?: () => Date;
  /** NODE_EXTRA_CA_CERTS and SSL_CERT_FILE are read from here (default process.env). */
  env?: NodeJS.ProcessEnv;
}

const processIo: CheckIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
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

const CURVE_NAMES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

function keyWords(k: NonNullable<ProbeResult['key']>): string {
  if (k.curve)
    return `${k.type.toUpperCase()} ${CURVE_NAMES[k.curve] ?? k.curve}${k.bits ? ` (${k.bits} bits)` : ''}`;
  return `${k.type.toUpperCase()}${k.bits ? ` ${k.bits} bits` : ''}`;
}

function renderHuman(r: ProbeResult, v: Verdict, now: Date): string {
  const t = r.target;
  const rows: [string, string][] = [];
  rows.push([
    'target',
    `${formatHostPort(t.host, t.port)}${t.sni ? ` (SNI ${t.sni})` : ''}${t.starttls ? ` STARTTLS ${t.starttls}` : ''}`,
  ]);
  if (t.address) rows.push(['address', t.address]);
  if (r.failedAt) rows.push(['failed at', `${r.failedAt}${r.tlsError ? ` (${r.tlsError})` : ''}`]);
  if (r.tlsVersion)
    rows.push([
      'tls',
      `${r.tlsVersion}, handshake ${r.handshakeMs} ms${r.cipher ? `, ${r.cipher}` : ''}${r.group ? `, ${r.group}` : ''}`,
    ]);
  if (r.fingerprint) {
    rows.push(['subject', r.subject ?? '']);
    rows.push(['sans', (r.sans ?? []).join(', ') || '(none)']);
    rows.push(['issuer', r.issuer ?? '']);
    rows.push(['serial', r.serial ?? '']);
    rows.push(['fingerprint', `sha256 ${r.fingerprint}`]);
    if (r.key) rows.push(['key', keyWords(r.key)]);
    if (r.signatureAlgorithm) rows.push(['signature', r.signatureAlgorithm]);
    rows.push(['eku', r.eku ? r.eku.join(', ') : '(none: any use)']);
    rows.push(['not before', r.notBefore ?? '']);
    rows.push(['not after', `${r.notAfter} (${daysLeft(r, now)} days left)`]);
    rows.push(['hostname', r.hostnameMatches ? 'matches' : 'DOES NOT MATCH']);
    rows.push(['chain', r.chainVerified ? 'verified' : `NOT VERIFIED: ${r.chainError ?? ''}`]);
  }
  const lines = rows.map(([k, v]) => `${k.padEnd(12)} ${v}`);
  if (r.chain?.length)
    lines.push(
      `chain as sent (${r.chain.length}):`,
      ...r.chain.map(
        (c, i) =>
          `  ${i}  ${c.subject}  (issued by ${c.issuer})  ${c.notBefore.slice(0, 10)} → ${c.notAfter.slice(0, 10)}`,
      ),
    );
  for (const w of r.warnings ?? []) lines.push(`warning      ${w.kind}: ${w.message}`);
  lines.push(`verdict      ${v.line}`);
  for (const p of (r.problems ?? []).slice(1)) lines.push(`also         ${p.kind}: ${p.message}`);
  return `${lines.join('\n')}\n`;
}

/** A file of trusted roots: one or more PEM certificates. */
async function readRoots(path: string, source: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CertfleetError(
      'BAD_REQUEST',
      `cannot read ${source} ${path}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`,
      `give ${source} the path of a readable PEM file holding the root certificates to trust`,
    );
  }
  const { splitPemCertificates } = await import('../pki/inspect.ts');
  const pems = splitPemCertificates(text);
  if (pems.length === 0)
    throw new CertfleetError(
      'BAD_REQUEST',
      `${source} ${path} holds no PEM certificate`,
      'give a file with "-----BEGIN CERTIFICATE-----" blocks',
    );
  return pems;
}

/** Roots trusted besides the system ones: --ca-file, then the files OpenSSL and Node users already set. */
async function extraRoots(caFile: string | undefined, env: NodeJS.ProcessEnv): Promise<string[]> {
  const sources: [string | undefined, string][] = [
    [caFile, '--ca-file'],
    [env.NODE_EXTRA_CA_CERTS, 'NODE_EXTRA_CA_CERTS'],
    [env.SSL_CERT_FILE, 'SSL_CERT_FILE'],
  ];
  const out: string[] = [];
  for (const [path, source] of sources) if (path) out.push(...(await readRoots(path, source)));
  return out;
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
  let trustedRootPems: string[];
  try {
    const { host, port } = parseHostPort(hostPort);
    target = {
      host,
      port,
      ...(options.sni ? { sni: options.sni } : {}),
      ...(options.starttls ? { starttls: options.starttls } : {}),
    };
    trustedRootPems = await extraRoots(options.caFile, io.env ?? process.env);
  } catch (e) {
    return usage(e);
  }
  const days = options.days ?? DEFAULT_CHECK_DAYS;
  let results: ProbeResult[];
  try {
    // Loaded here, not at the top: the prober brings the X.509 stack, which `certfleet --help` must not load.
    const { probeTarget } = await import('../probe/probe.ts');
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
      results: results.map((r, i) => ({
        ...r,
        daysLeft: daysLeft(r, now),
        verdict: verdicts[i].line,
      })),
    };
    io.out(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    io.out(results.map((r, i) => renderHuman(r, verdicts[i], now)).join('\n'));
  }
  return ok ? CHECK_EXIT.valid : CHECK_EXIT.invalid;
}

/** Adds `check <host:port>` to a commander program; main() turns the thrown exit into the process's code. */
export function registerCheckCommand(program: Command, io: CheckIo = processIo): Command {
  return program
    .command('check')
    .description(
      'connect to host:port, show the certificate it serves, and judge it as browsers do (exit 0 valid, 1 not, 2 usage). ' +
        'Trusts the system roots plus --ca-file, NODE_EXTRA_CA_CERTS and SSL_CERT_FILE; --json prints JSON',
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
    .option('--all-addresses', 'check every address the host resolves to (IPv4 and IPv6)')
    .option(
      '--timeout <ms>',
      'per address: connect + STARTTLS + handshake',
      intOption('--timeout', 1),
      DEFAULT_PROBE_TIMEOUT_MS,
    )
    .action(async (hostPort: string, options: CheckOptions, cmd: Command) => {
      const { caFile, json } = globalFlags(cmd);
      let code: number;
      try {
        code = await executeCheck(hostPort, { ...options, caFile, json }, io);
      } catch (e) {
        io.err(`certfleet check: ${errorMessage(e)}\n`);
        code = CHECK_EXIT.invalid;
      }
      exitWith(code);
    });
}
