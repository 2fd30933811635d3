/**
 * Probes prove what a server actually serves: a real TLS handshake (after STARTTLS for mail protocols) with
 * verification switched off in OpenSSL, then the chain as sent judged by src/pki/judge-chain.ts, so every failure
 * gets a kind and a fix instead of a bare OpenSSL error. When the handshake itself fails, one more handshake with
 * a relaxed client (TLS 1.0-1.2, every cipher and curve) finds out why: a server that speaks only TLS 1.0/1.1, or
 * a certificate no browser can use. A probe never hangs and never throws for network trouble: a timeout covers
 * connect + STARTTLS + handshake and the socket is always destroyed.
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
import { DEFAULT_PROBE_TIMEOUT_MS } from './probe-basics.ts';
import type { ProbeTarget } from '../core/types.ts';
import { oneLine } from '../pki/cert-facts.ts';
import { inspectCertificate, type CertInfo } from '../pki/inspect.ts';
import { judgeChain, type ChainFailure } from '../pki/judge-chain.ts';
import { trustStore } from '../pki/trust-store.ts';
import {
  formatHostPort,
  type ChainCertSummary,
  type ProbeError,
  type ProbeErrorKind,
  type ProbeResult,
} from './probe-result.ts';
import { STARTTLS_PROTOCOLS, StartTlsError, negotiateStartTls } from './starttls.ts';

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

export { DEFAULT_PROBE_TIMEOUT_MS };

/**
 * An empty CA list keeps OpenSSL from appending roots of its own to the peer chain, so the peer chain is what
 * the server sent, and keeps OpenSSL's own verification failing fast (so Node never builds
 * getPeerCertificate(true) for checkServerIdentity). Verification is ours (src/pki/judge-chain.ts).
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

/**
 * The second try after a failed handshake: what browsers no longer accept, so the probe can say what the server
 * needs (TLS 1.0/1.1, a weak cipher, a certificate on a curve no client offers). TLS 1.3 is left out because
 * it cannot use such certificates at all.
 */
let relaxedContext: SecureContext | undefined;
function looseContext(): SecureContext {
  relaxedContext ??= createSecureContext({
    ca: [],
    minVersion: 'TLSv1',
    maxVersion: 'TLSv1.2',
    ciphers: 'DEFAULT@SECLEVEL=0',
    ecdhCurve: 'X25519:P-256:P-384:P-521:secp256k1:prime192v1:secp224r1',
  });
  return relaxedContext;
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
    {
      target: { ...target },
      ok: false,
      at,
      ...(kind === 'dns' ? { failedAt: 'dns' } : {}),
      error: { kind, message },
    },
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
  if (!opts.allAddresses) return [await probeWithRetry(target, host, addresses[0], o)];
  return Promise.all(addresses.map((address) => probeWithRetry(target, host, address, o)));
}

type Stage = 'connect' | 'starttls' | 'handshake';
type AddressOptions = ProbeOptions & { timeoutMs: number; now: Date };

/** TLS alerts and errors that a client with older protocols, ciphers or curves might get past. */
function worthRelaxedRetry(r: ProbeResult): boolean {
  return (
    r.failedAt === 'handshake' &&
    r.tlsError !== undefined &&
    !/wrong version number|packet length too long|http request/i.test(r.tlsError)
  );
}

async function probeWithRetry(
  target: ProbeTarget,
  host: string,
  address: string,
  opts: AddressOptions,
): Promise<ProbeResult> {
  const first = await probeAddress(target, host, address, opts, false);
  if (!worthRelaxedRetry(first) || opts.signal?.aborted) return first;
  const loose = await probeAddress(target, host, address, opts, true);
  if (!loose.fingerprint) return first;
  // Only the relaxed handshake worked: what it saw is what was learned, never a pass.
  const hp = hostPortWords(target, host, address);
  const version = loose.tlsVersion ?? 'an old protocol';
  let error: ProbeError;
  if (/^(SSLv3|TLSv1|TLSv1\.1)$/.test(version))
    error = {
      kind: 'old_tls_version',
      message:
        `${hp} speaks only ${version}: a TLS 1.2/1.3 handshake failed (${first.tlsError}) and one allowing ` +
        `${version} worked. Browsers and OpenSSL 3 refuse TLS 1.0 and 1.1. Fix: enable TLS 1.2 and 1.3 on the ` +
        'server (nginx: ssl_protocols TLSv1.2 TLSv1.3; Apache: SSLProtocol -all +TLSv1.2 +TLSv1.3)',
    };
  else
    error = loose.error ?? {
      kind: 'handshake',
      message:
        `${hp} completes a handshake only with settings browsers refuse (${version}, cipher ${loose.cipher}, ` +
        `group ${loose.group}); the normal handshake failed (${first.tlsError}). Fix: enable modern ECDHE ` +
        'AES-GCM/ChaCha20 ciphers and the X25519/P-256 groups on the server',
    };
  return {
    ...loose,
    ok: false,
    failedAt: 'handshake',
    tlsError: first.tlsError,
    handshakeMs: first.handshakeMs,
    error,
    problems: [error, ...(loose.problems ?? []).filter((p) => p !== loose.error)],
  };
}

function hostPortWords(target: ProbeTarget, host: string, address: string): string {
  return address === host
    ? formatHostPort(host, target.port)
    : `${formatHostPort(host, target.port)} (${address})`;
}

function probeAddress(
  target: ProbeTarget,
  host: string,
  address: string,
  opts: AddressOptions,
  relaxed: boolean,
): Promise<ProbeResult> {
  const base = { target: { ...target, address }, at: opts.now.toISOString() };
  const hp = hostPortWords(target, host, address);
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
      const tlsCode = stage === 'handshake' && /^ERR_SSL_/.test((e as { code?: string }).code ?? '');
      fail(kind, message, { failedAt: stage, ...(tlsCode ? { tlsError: shortReason(e) } : {}) });
    };
    const onClose = () =>
      stage === 'starttls'
        ? fail('starttls', `${hp} closed the connection during the STARTTLS exchange`, { failedAt: stage })
        : fail('handshake', `${hp} closed the connection during the ${stageWords(stage)}. ${HANDSHAKE_FIX}`, {
            failedAt: stage,
          });
    const timer = setTimeout(
      () => fail('timeout', timeoutMessage(hp, stage, opts.timeoutMs), { failedAt: stage }),
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
        secureContext: relaxed ? looseContext() : sharedContext(),
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
        secureContext: relaxed ? looseContext() : sharedContext(),
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
  summary: ChainCertSummary;
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
    const subject = oneLine(info.subject);
    const issuer = oneLine(info.issuer);
    hit = {
      x509,
      info,
      pem: x509.toString(),
      subject,
      issuer,
      summary: {
        subject,
        issuer,
        notBefore: info.notBefore.toISOString(),
        notAfter: info.notAfter.toISOString(),
        fingerprint: info.fingerprint,
      },
    };
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
 * Node links each certificate to the next one sent, not to its real issuer, so this is the order on the wire,
 * extras included: the judgement needs exactly that to warn about order and unrelated certificates.
 */
function peerChain(tlsSocket: TLSSocket): SeenCert[] | undefined {
  const leaf = tlsSocket.getPeerX509Certificate();
  if (!leaf) return undefined;
  const chain: SeenCert[] = [];
  for (let c: X509Certificate | undefined = leaf; c && chain.length < 20; c = c.issuerCertificate) {
    const seen = seenCert(c.raw);
    if (chain.some((x) => x.info.fingerprint === seen.info.fingerprint)) break; // the same certificate sent twice
    chain.push(seen);
  }
  return chain;
}

function describe(f: ChainFailure, hp: string): ProbeError {
  return { kind: f.kind, message: `${hp}: ${f.message}. Fix: ${f.hint}` };
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
  const cipher = tlsSocket.getCipher()?.standardName;
  const eph = tlsSocket.getEphemeralKeyInfo() as { name?: string; type?: string; size?: number } | null;
  const group = eph?.name ?? (eph?.type ? `${eph.type}-${eph.size}` : undefined);
  const chain = peerChain(tlsSocket);
  if (!chain)
    return {
      ...base,
      tlsVersion,
      cipher,
      group,
      ok: false,
      error: {
        kind: 'handshake',
        message: `${hp} completed the handshake without a certificate. ${HANDSHAKE_FIX}`,
      },
    };
  const leaf = chain[0].info;
  const judgement = judgeChain(
    chain.map((c) => c.x509),
    {
      store: trustStore(opts.trustedRootPems, opts.useSystemRoots ?? true),
      now: opts.now,
      name: target.sni ?? host,
      chainKey: chain.map((c) => c.info.fingerprint).join('|'),
    },
  );
  const problems = judgement.failures.map((f) => describe(f, hp));
  const chainFailure = judgement.failures.find((f) => f.kind !== 'hostname_mismatch');
  const leafFacts = judgement.path[0];
  return {
    ...base,
    ok: judgement.ok,
    fingerprint: leaf.fingerprint,
    serial: leaf.serial,
    subject: chain[0].subject,
    issuer: chain[0].issuer,
    sans: leaf.sans,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
    chainPems: chain.map((c) => c.pem),
    chainVerified: chainFailure === undefined,
    ...(chainFailure ? { chainError: chainFailure.message } : {}),
    hostnameMatches: judgement.nameMatches,
    tlsVersion,
    cipher,
    group,
    key: leafFacts.key,
    signatureAlgorithm: leafFacts.signature.algorithm,
    ...(leafFacts.eku ? { eku: leafFacts.eku } : {}),
    chain: chain.map((c) => c.summary),
    ...(problems.length ? { problems, error: problems[0] } : {}),
    ...(judgement.warnings.length ? { warnings: judgement.warnings } : {}),
  };
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
