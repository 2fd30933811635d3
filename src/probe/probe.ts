/**
 * Probes prove what a server actually serves: a real TLS handshake (after STARTTLS for mail protocols) with
 * verification switched off in OpenSSL, then our own evaluation of the chain as sent, the name, and the dates,
 * so every failure gets a kind and a fix instead of a bare OpenSSL error. A probe never hangs and never throws
 * for network trouble: a timeout covers connect + STARTTLS + handshake and the socket is always destroyed.
 */
import { X509Certificate } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  DEFAULT_CIPHERS,
  connect as tlsConnect,
  createSecureContext,
  type SecureContext,
  type TLSSocket,
} from 'node:tls';
import { CertfleetError } from '../core/errors.ts';
import type { ProbeTarget } from '../core/types.ts';
import { inspectCertificate, type CertInfo } from '../pki/inspect.ts';
import { formatHostPort, type ProbeErrorKind, type ProbeResult } from './probe-result.ts';
import { STARTTLS_PROTOCOLS, StartTlsError, negotiateStartTls } from './starttls.ts';
import { oneLine, trustStore, verifySentChain } from './verify-chain.ts';

export interface ProbeOptions {
  /** Extra trusted roots (PEM), e.g. a private CA. */
  trustedRootPems?: string[];
  /** Also trust Node's bundled Mozilla roots (default true). */
  useSystemRoots?: boolean;
  /** Per address: TCP connect + STARTTLS + TLS handshake must finish within this (default 5000). DNS gets its own. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Dates are judged against this instant (default: now). */
  now?: Date;
  /** One result per resolved address instead of one for the first address. */
  allAddresses?: boolean;
  /** Name → addresses; defaults to the system resolver (getaddrinfo). Tests inject one. */
  lookup?: (host: string) => Promise<string[]>;
}

export const DEFAULT_PROBE_TIMEOUT_MS = 5000;

/**
 * An empty CA list keeps OpenSSL from appending roots of its own to the peer chain, so the peer chain is what
 * the server sent, and keeps OpenSSL's own verification failing fast (so Node never builds
 * getPeerCertificate(true) for checkServerIdentity). Verification is ours (verify-chain.ts).
 * TLS 1.3 suites: all three standard ones, AES-128-GCM-SHA256 first. Its SHA-256 key schedule runs on the CPU's
 * SHA extensions where SHA-384 does not, and RFC 8446 §9.1 makes it mandatory, so no server is lost.
 * TLS 1.2 and its ciphers stay at Node's defaults, so older servers are still probed.
 */
export const PROBE_TLS13_SUITES =
  'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384';
let emptyContext: SecureContext | undefined;
function sharedContext(): SecureContext {
  emptyContext ??= createSecureContext({
    ca: [],
    // Node takes TLS 1.3 suites (TLS_*) and TLS 1.2 ciphers in one list; keep the TLS 1.2 part as Node's default
    ciphers: [PROBE_TLS13_SUITES, ...DEFAULT_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_'))].join(
      ':',
    ),
  });
  return emptyContext;
}

function validateTarget(t: ProbeTarget): void {
  if (!t || typeof t.host !== 'string' || t.host.trim() === '')
    throw new CertfleetError('BAD_REQUEST', 'probe target has no host', 'give a host name or IP address');
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535)
    throw new CertfleetError(
      'BAD_REQUEST',
      `probe target port ${t.port} is not valid`,
      'use a port from 1 to 65535',
    );
  if (t.starttls !== undefined && !STARTTLS_PROTOCOLS.includes(t.starttls))
    throw new CertfleetError(
      'BAD_REQUEST',
      `unknown STARTTLS protocol "${String(t.starttls)}"`,
      `use one of: ${STARTTLS_PROTOCOLS.join(', ')}`,
    );
}

/** Strips the brackets of "[::1]" so net/dns get a plain literal. */
function bareHost(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function defaultLookup(host: string): Promise<string[]> {
  return dnsLookup(host, { all: true }).then((list) => list.map((a) => a.address));
}

function withTimeout<T>(p: Promise<T>, ms: number, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })), ms);
    const onAbort = () => reject(Object.assign(new Error('cancelled'), { code: 'ABORT_ERR' }));
    signal?.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    });
  });
}

export async function probeTarget(target: ProbeTarget, opts: ProbeOptions = {}): Promise<ProbeResult[]> {
  validateTarget(target);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const now = opts.now ?? new Date();
  const host = bareHost(target.host);
  const at = now.toISOString();
  const hp = formatHostPort(host, target.port);
  const fail = (kind: ProbeErrorKind, message: string): ProbeResult[] => [
    { target: { ...target }, ok: false, at, error: { kind, message } },
  ];
  if (opts.signal?.aborted) return fail('other', `probe of ${hp} was cancelled before it started`);

  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await withTimeout((opts.lookup ?? defaultLookup)(host), timeoutMs, opts.signal);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ABORT_ERR') return fail('other', `probe of ${hp} was cancelled`);
      if (code === 'ETIMEOUT')
        return fail(
          'dns',
          `resolving "${host}" took longer than ${timeoutMs} ms. Fix: check the DNS resolver in /etc/resolv.conf`,
        );
      return fail(
        'dns',
        `cannot resolve "${host}" (${code ?? (e as Error).message}). Fix: check the spelling of the host name and that its DNS A/AAAA record exists`,
      );
    }
    if (addresses.length === 0)
      return fail('dns', `"${host}" has no addresses. Fix: add an A or AAAA record`);
  }
  const o = { ...opts, timeoutMs, now };
  if (!opts.allAddresses) return [await probeAddress(target, host, addresses[0], o)];
  return Promise.all(addresses.map((address) => probeAddress(target, host, address, o)));
}

type Stage = 'connect' | 'starttls' | 'handshake';

function probeAddress(
  target: ProbeTarget,
  host: string,
  address: string,
  opts: ProbeOptions & { timeoutMs: number; now: Date },
): Promise<ProbeResult> {
  const base = { target: { ...target, address }, at: opts.now.toISOString() };
  const hp =
    address === host
      ? formatHostPort(host, target.port)
      : `${formatHostPort(host, target.port)} (${address})`;
  const servername = target.sni ?? (isIP(host) ? undefined : host);
  return new Promise<ProbeResult>((resolve) => {
    let stage: Stage = 'connect';
    let socket: Socket | undefined;
    let tlsSocket: TLSSocket | undefined;
    let settled = false;
    let t0 = 0;
    const finish = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      // no graceful TLS/TCP close: the probe has what it came for
      tlsSocket?.destroy();
      socket?.destroy();
      resolve(r);
    };
    const fail = (kind: ProbeErrorKind, message: string, extra: Partial<ProbeResult> = {}) =>
      finish({ ...base, ...extra, ok: false, error: { kind, message } });
    const onError = (e: Error) => {
      const [kind, message] = describeNetworkError(e, stage, hp, target);
      fail(kind, message);
    };
    const onClose = () =>
      stage === 'starttls'
        ? fail('starttls', `${hp} closed the connection during the STARTTLS exchange`)
        : fail('handshake', `${hp} closed the connection during the ${stageWords(stage)}. ${HANDSHAKE_FIX}`);
    const timer = setTimeout(
      () => fail('timeout', timeoutMessage(hp, stage, opts.timeoutMs)),
      opts.timeoutMs,
    );
    const onAbort = () => fail('other', `probe of ${hp} was cancelled`);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const onSecure = () => {
      const handshakeMs = Math.round((performance.now() - t0) * 10) / 10;
      try {
        finish(evaluate(tlsSocket!, target, host, hp, opts, { ...base, handshakeMs }));
      } catch (e) {
        fail('other', `could not read the certificate served on ${hp}: ${(e as Error).message}`);
      }
    };

    if (!target.starttls) {
      // One TLS socket that connects itself: no second stream object per probe. The handshake clock starts
      // on TCP connect, before Node's own listener sends the ClientHello.
      tlsSocket = tlsConnect({
        host: address,
        port: target.port,
        servername,
        rejectUnauthorized: false,
        secureContext: sharedContext(),
      });
      tlsSocket.prependOnceListener('connect', () => {
        stage = 'handshake';
        t0 = performance.now();
        tlsSocket!.setNoDelay(true);
      });
      tlsSocket.on('error', onError);
      tlsSocket.on('close', onClose);
      tlsSocket.once('secureConnect', onSecure);
      return;
    }

    // STARTTLS: plain TCP first, then TLS over the same socket.
    const plain = netConnect({ host: address, port: target.port });
    socket = plain;
    plain.setNoDelay(true);
    plain.on('error', onError);
    plain.on('close', onClose);
    plain.once('connect', async () => {
      stage = 'starttls';
      try {
        await negotiateStartTls(plain, target.starttls!);
      } catch (e) {
        if (settled) return;
        return e instanceof StartTlsError
          ? fail('starttls', `${target.starttls!.toUpperCase()} STARTTLS on ${hp} failed: ${e.message}`)
          : onError(e as Error);
      }
      if (settled) return;
      plain.resume();
      stage = 'handshake';
      t0 = performance.now();
      tlsSocket = tlsConnect({
        socket: plain,
        servername,
        rejectUnauthorized: false,
        secureContext: sharedContext(),
      });
      tlsSocket.on('error', onError);
      tlsSocket.once('secureConnect', onSecure);
    });
  });
}

/** A parsed certificate with what every probe that sees it needs, computed once. */
interface SeenCert {
  x509: X509Certificate;
  info: CertInfo;
  pem: string;
  subject: string;
  issuer: string;
}

/**
 * Parsing is a large share of a probe's CPU and fleets serve the same few certificates from many endpoints:
 * keep parsed certificates, their summary and PEM by DER, bounded. The DER still comes from every handshake.
 */
const seenCerts = new Map<string, SeenCert>();
function seenCert(raw: Buffer): SeenCert {
  const key = raw.toString('latin1');
  let hit = seenCerts.get(key);
  if (!hit) {
    const x509 = new X509Certificate(raw);
    const info = inspectCertificate(x509);
    hit = { x509, info, pem: x509.toString(), subject: oneLine(info.subject), issuer: oneLine(info.issuer) };
    if (seenCerts.size >= 2000) seenCerts.clear();
    seenCerts.set(key, hit);
  }
  return hit;
}

/**
 * The chain as sent, from this handshake. getPeerX509Certificate() links each certificate to its issuer among
 * the certificates the peer sent (the context's CA list is empty, so nothing is added locally) and costs far
 * less than getPeerCertificate(true), which copies every certificate and builds a detailed object for each.
 * Node 20 hands the peer chain over on the first call (a second call returns nothing): call it once.
 */
function peerChain(tlsSocket: TLSSocket): SeenCert[] | undefined {
  const leaf = tlsSocket.getPeerX509Certificate();
  if (!leaf) return undefined;
  const chain: SeenCert[] = [];
  for (let c: X509Certificate | undefined = leaf; c && chain.length < 20; c = c.issuerCertificate) {
    const seen = seenCert(c.raw);
    if (chain.some((x) => x.info.fingerprint === seen.info.fingerprint)) break; // a root linked to itself
    chain.push(seen);
  }
  return chain;
}

/** Same rules as tls.checkServerIdentity: SANs, the CN only when there are no DNS SANs, IPs against IP SANs. */
function coversName(cert: X509Certificate, name: string): boolean {
  const n = name.replace(/\.$/, '');
  if (isIP(n)) return cert.checkIP(n) !== undefined;
  return cert.checkHost(n, { subject: 'default', wildcards: true, partialWildcards: false }) !== undefined;
}

function evaluate(
  tlsSocket: TLSSocket,
  target: ProbeTarget,
  host: string,
  hp: string,
  opts: ProbeOptions & { now: Date },
  base: Pick<ProbeResult, 'target' | 'at' | 'handshakeMs'>,
): ProbeResult {
  const tlsVersion = tlsSocket.getProtocol() ?? undefined;
  const chain = peerChain(tlsSocket);
  if (!chain)
    return {
      ...base,
      tlsVersion,
      ok: false,
      error: {
        kind: 'handshake',
        message: `${hp} completed the handshake without a certificate. ${HANDSHAKE_FIX}`,
      },
    };
  const leaf = chain[0].info;
  const name = target.sni ?? host;
  const hostnameMatches = coversName(chain[0].x509, name);
  const verdict = verifySentChain(
    chain.map((c) => c.x509),
    trustStore(opts.trustedRootPems, opts.useSystemRoots ?? true),
    opts.now,
    chain.map((c) => c.info.fingerprint).join('|'),
  );
  const result: ProbeResult = {
    ...base,
    ok: false,
    fingerprint: leaf.fingerprint,
    serial: leaf.serial,
    subject: chain[0].subject,
    issuer: chain[0].issuer,
    sans: leaf.sans,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
    chainPems: chain.map((c) => c.pem),
    chainVerified: verdict.verified,
    ...(verdict.verified ? {} : { chainError: verdict.problem }),
    hostnameMatches,
    tlsVersion,
  };
  const subject = chain[0].subject;
  const day = 86_400_000;
  if (!hostnameMatches) {
    result.error = {
      kind: 'hostname_mismatch',
      message:
        `the certificate served on ${hp} ("${subject}") does not cover "${name}"; it covers ${
          leaf.sans.length ? leaf.sans.join(', ') : 'no names (no subjectAltName)'
        }. Fix: deploy a certificate whose SANs include "${name}", or make the server pick the right ` +
        `certificate for this name (SNI / server_name)${target.sni ? '' : ', or probe with the SNI name it should serve'}`,
    };
  } else if (opts.now > leaf.notAfter) {
    const ago = Math.floor((opts.now.getTime() - leaf.notAfter.getTime()) / day);
    result.error = {
      kind: 'expired',
      message:
        `the certificate served on ${hp} ("${subject}") expired at ${leaf.notAfter.toISOString()} (${ago} days ago). ` +
        'Fix: renew it and deploy the new version; if a renewed file is already on disk, the server was not reloaded',
    };
  } else if (opts.now < leaf.notBefore) {
    result.error = {
      kind: 'expired',
      message:
        `the certificate served on ${hp} ("${subject}") is not valid before ${leaf.notBefore.toISOString()}. ` +
        "Fix: check this machine's and the server's clocks, or wait until the certificate becomes valid",
    };
  } else if (!verdict.verified) {
    const fix = verdict.missingIssuer
      ? 'Fix: serve the full chain, leaf first then the intermediates (e.g. fullchain.pem as nginx ssl_certificate)'
      : 'Fix: if this is a private CA, trust its root (--ca-file); otherwise serve a certificate from a trusted CA with its full chain';
    result.error = {
      kind: verdict.kind,
      message: `the chain served on ${hp} does not verify: ${verdict.problem}. ${fix}`,
    };
  } else {
    result.ok = true;
  }
  return result;
}

const HANDSHAKE_FIX =
  'Fix: check that this port serves TLS right away (for a mail port that starts in plain text, use STARTTLS ' +
  'smtp/imap/pop3) and that the server has a certificate and key configured for this name';

function stageWords(stage: Stage): string {
  return stage === 'connect' ? 'TCP connect' : stage === 'starttls' ? 'STARTTLS exchange' : 'TLS handshake';
}

function timeoutMessage(hp: string, stage: Stage, ms: number): string {
  const fix =
    stage === 'connect'
      ? 'Fix: check that the host is up and that no firewall drops traffic to this port'
      : stage === 'starttls'
        ? 'Fix: check that this port speaks the chosen mail protocol and is not overloaded'
        : 'Fix: the server accepted the connection but never completed a handshake; check that the port serves TLS ' +
          '(use STARTTLS for SMTP/IMAP/POP3 ports) and that the server is not overloaded';
  return `no answer from ${hp} within ${ms} ms (stuck in the ${stageWords(stage)}). ${fix}`;
}

/** OpenSSL errors carry a short `reason` ("wrong version number"); the message has its internal file path. */
function shortReason(e: Error): string {
  return (e as { reason?: string }).reason ?? e.message.split('\n')[0];
}

function describeNetworkError(
  e: Error,
  stage: Stage,
  hp: string,
  target: ProbeTarget,
): [ProbeErrorKind, string] {
  const code = (e as { code?: string }).code ?? '';
  if (code === 'ECONNREFUSED')
    return [
      'refused',
      `connection to ${hp} was refused: nothing listens on port ${target.port} there. ` +
        'Fix: start the server, or check the host and port (and that it listens on IPv4 and IPv6 alike)',
    ];
  if (code === 'ETIMEDOUT') return ['timeout', timeoutMessage(hp, stage, 0).replace(' within 0 ms', '')];
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH')
    return [
      'other',
      `${hp} is unreachable (${code}). Fix: check routing and firewalls between here and the host`,
    ];
  if (code === 'ENOTFOUND' || code.startsWith('EAI_'))
    return ['dns', `cannot resolve ${hp} (${code}). Fix: check the host name and its DNS records`];
  if (stage === 'starttls')
    return ['starttls', `${target.starttls?.toUpperCase()} STARTTLS on ${hp} failed: ${e.message}`];
  if (stage === 'handshake') {
    // a TLS socket reports a peer hanging up mid-handshake as ECONNRESET
    if (code === 'ECONNRESET')
      return ['handshake', `${hp} closed the connection during the TLS handshake. ${HANDSHAKE_FIX}`];
    if (/wrong version number|packet length too long|http request/i.test(e.message))
      return [
        'handshake',
        `${hp} does not answer in TLS (${shortReason(e)}); it probably speaks plain text there. ${HANDSHAKE_FIX}`,
      ];
    return ['handshake', `TLS handshake with ${hp} failed: ${shortReason(e)}. ${HANDSHAKE_FIX}`];
  }
  return ['other', `connection to ${hp} failed: ${shortReason(e)}`];
}
