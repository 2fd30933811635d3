import { X509Certificate } from 'node:crypto';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { CertfleetError, type ErrorCode } from '../core/errors.ts';
import type { AgentIdentity } from './agent-identity.ts';
import { HubList, type HubChange } from './hub-list.ts';
import { signRequest } from '../protocol/request-signature.ts';
import type {
  AgentProbeResult,
  AgentReport,
  BundleResponse,
  DesiredState,
  EnrollRequest,
  EnrollResponse,
  HubCaResponse,
} from '../protocol/wire.ts';

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** SHA-256 of a certificate's DER, lower-case hex without colons (how the hub prints its CA fingerprint). */
export const certFingerprint = (pem: string): string =>
  new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();

export const normaliseFingerprint = (fp: string): string =>
  fp
    .replace(/^sha256:/i, '')
    .replaceAll(':', '')
    .toLowerCase();

/** Version ids listed in `have=` at most (URL length); a longer list only means some bundles come inlined again. */
const MAX_HAVE = 64;

/** How long a check that the first hub answers again may take (it runs before a request on a later hub). */
const PREFERRED_CHECK_MS = 2000;

export interface AgentClientOptions {
  insecureSkipVerify?: boolean;
  maxSockets?: number;
  heldVersions?: () => string[];
  /** Several hubs: called when the client moves to another one (hub-list.ts). */
  onHubChange?: (change: HubChange) => void;
  /** Several hubs: how long to stay on a later hub before checking the first again (default 60 s). */
  returnAfterMs?: number;
}

/**
 * HTTPS to the hub for one agent: trusts only the pinned hub CA, keeps connections alive (the long-poll and the
 * bundle fetch that follows reuse one socket), signs every request with the agent's Ed25519 key. Given several
 * hubs (one database behind them), it talks to one at a time and moves on when it fails (hub-list.ts); the
 * failed request still fails, and the caller's retry goes to the next hub.
 */
export class AgentClient {
  private readonly agents = new Map<string, HttpsAgent | HttpAgent>();
  private readonly heldVersions?: () => string[];
  private readonly list: HubList;
  private checking?: Promise<void>;

  constructor(
    hub: string | readonly string[],
    private readonly caPem: string | undefined,
    private readonly identity?: Pick<AgentIdentity, 'endpointId' | 'keys'>,
    private readonly opts: AgentClientOptions = {},
  ) {
    this.heldVersions = opts.heldVersions;
    const hubs = typeof hub === 'string' ? [hub] : [...hub];
    this.list = new HubList(hubs, opts.returnAfterMs, opts.onHubChange);
  }

  /** The hub requests go to now. */
  get hub(): string {
    return this.list.current;
  }

  private agentFor(hub: string): HttpsAgent | HttpAgent {
    let agent = this.agents.get(hub);
    if (!agent) {
      agent =
        new URL(hub).protocol === 'https:'
          ? new HttpsAgent({
              keepAlive: true,
              maxSockets: this.opts.maxSockets ?? 4,
              ...(this.caPem ? { ca: this.caPem } : {}),
              ...(this.opts.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
            })
          : new HttpAgent({ keepAlive: true, maxSockets: this.opts.maxSockets ?? 4 });
      this.agents.set(hub, agent);
    }
    return agent;
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
  }

  /** On a later hub for a while: a quick unsigned request tells whether the first one answers again. */
  private returnToPreferred(): Promise<void> {
    if (!this.list.shouldTryPreferred()) return Promise.resolve();
    this.checking ??= this.send<HubCaResponse>(this.list.hubs[0], 'GET', '/api/v1/agent/ca', undefined, {
      unsigned: true,
      timeoutMs: PREFERRED_CHECK_MS,
    })
      .then(
        () => this.list.preferredChecked(true),
        () => this.list.preferredChecked(false),
      )
      .finally(() => (this.checking = undefined));
    return this.checking;
  }

  /**
   * GET /agent/desired: at once when the hub's revision is past `since`, else after up to `waitSeconds`. With
   * `have` (the version ids whose bundles the agent holds; defaults to the client's `heldVersions` option) the hub
   * inlines the bundle of every desired version not in it, so a new version needs no separate bundle request.
   */
  desired(
    since: number,
    waitSeconds: number,
    opts: RequestOptions & { have?: string[] } = {},
  ): Promise<DesiredState> {
    const have = opts.have ?? this.heldVersions?.();
    const query = `since=${since}&wait=${waitSeconds}${have ? `&have=${have.slice(0, MAX_HAVE).join(',')}` : ''}`;
    return this.request('GET', `/api/v1/agent/desired?${query}`, undefined, {
      timeoutMs: (waitSeconds + 20) * 1000,
      ...opts,
    });
  }

  bundle(versionId: string, opts: RequestOptions = {}): Promise<BundleResponse> {
    return this.request('GET', `/api/v1/agent/bundle/${encodeURIComponent(versionId)}`, undefined, opts);
  }

  report(reports: AgentReport[], opts: RequestOptions = {}): Promise<{ accepted: number }> {
    return this.request(
      'POST',
      '/api/v1/agent/report',
      reports.length === 1 ? reports[0] : { reports },
      opts,
    );
  }

  /** POST /agent/probe-results: this agent's probes of its endpoint's targets (`from: agent | both`). */
  probeResults(results: AgentProbeResult[], opts: RequestOptions = {}): Promise<{ accepted: number }> {
    return this.request('POST', '/api/v1/agent/probe-results', { results }, opts);
  }

  enroll(body: EnrollRequest, opts: RequestOptions = {}): Promise<EnrollResponse> {
    return this.request('POST', '/api/v1/agent/enroll', body, { ...opts, unsigned: true });
  }

  ca(opts: RequestOptions = {}): Promise<HubCaResponse> {
    return this.request('GET', '/api/v1/agent/ca', undefined, { ...opts, unsigned: true });
  }

  /** One request to the current hub; a connection failure, timeout or 5xx moves the client to the next hub. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    opts: RequestOptions & { unsigned?: boolean } = {},
  ): Promise<T> {
    await this.returnToPreferred();
    const hub = this.list.current;
    try {
      return await this.send<T>(hub, method, path, body, opts);
    } catch (e) {
      if (!opts.signal?.aborted && isHubFailure(e)) this.list.failed(hub, (e as Error).message);
      throw e;
    }
  }

  private send<T>(
    hub: string,
    method: string,
    path: string,
    body?: unknown,
    opts: RequestOptions & { unsigned?: boolean } = {},
  ): Promise<T> {
    opts.signal?.throwIfAborted();
    const url = new URL(path, hub);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (!opts.unsigned) {
      if (!this.identity) throw new Error('AgentClient: signed request without an identity');
      Object.assign(
        headers,
        signRequest(
          this.identity.keys.signing,
          this.identity.endpointId,
          method,
          url.pathname + url.search,
          payload,
        ),
      );
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<T>((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          headers,
          agent: this.agentFor(hub),
          timeout: opts.timeoutMs ?? 30_000,
          ...(opts.signal ? { signal: opts.signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(this.connectionError(hub, err)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let data: unknown;
            try {
              data = text ? JSON.parse(text) : undefined;
            } catch {
              data = { message: text.slice(0, 200) };
            }
            const status = res.statusCode ?? 500;
            if (status >= 400) {
              const e = (data ?? {}) as { code?: ErrorCode; message?: string; hint?: string };
              reject(
                new CertfleetError(
                  e.code ?? 'INTERNAL',
                  e.message ?? `hub answered HTTP ${status}`,
                  e.hint ?? '',
                  {
                    details: { httpStatus: status },
                  },
                ),
              );
            } else resolve(data as T);
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })),
      );
      req.on('error', (err: NodeJS.ErrnoException) => reject(this.connectionError(hub, err, opts.signal)));
      if (payload) req.write(payload);
      req.end();
    });
  }

  private connectionError(hub: string, err: NodeJS.ErrnoException, signal?: AbortSignal): Error {
    if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : err;
    const untrusted = [
      'SELF_SIGNED_CERT_IN_CHAIN',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'ERR_TLS_CERT_ALTNAME_INVALID',
    ];
    if (err.code && untrusted.includes(err.code)) {
      return new CertfleetError(
        'UNREACHABLE',
        `the hub at ${hub} presented a certificate not issued by the pinned hub CA (${err.code})`,
        'check --hub; if the hub CA was replaced, enroll the agent again with the new fingerprint',
        { cause: err },
      );
    }
    return new CertfleetError(
      'UNREACHABLE',
      `cannot reach the hub at ${hub}: ${err.code ?? err.message}`,
      'the agent retries with backoff; check the hub and the network',
      {
        cause: err,
        details: { transient: true },
      },
    );
  }
}

/** The hub itself failed (network, timeout, 5xx): with several hubs, time to try another. A 4xx is an answer. */
function isHubFailure(e: unknown): boolean {
  if (!(e instanceof CertfleetError)) return false;
  const status = (e.details?.httpStatus as number | undefined) ?? e.status;
  return e.details?.transient === true || status >= 500;
}

/** True for errors worth retrying later (network, timeouts, hub 5xx); false for refusals (4xx). */
export function isTransient(e: unknown): boolean {
  if (!(e instanceof CertfleetError)) return true;
  const status = (e.details?.httpStatus as number | undefined) ?? e.status;
  return e.details?.transient === true || status >= 500 || status === 429;
}

/**
 * Fetches the hub's CA without trusting anything yet, accepts it only when the root's SHA-256 equals the
 * fingerprint given by the operator, then proves the hub's TLS certificate chains to that root with a second,
 * fully verified request. Returns the root PEM to pin.
 */
export async function fetchPinnedCa(
  hub: string,
  fingerprint: string,
  opts: RequestOptions = {},
): Promise<string> {
  const want = normaliseFingerprint(fingerprint);
  if (!/^[0-9a-f]{64}$/.test(want)) {
    throw new CertfleetError(
      'VALIDATION_FAILED',
      '--ca-fingerprint is not a SHA-256 fingerprint',
      'copy the 64 hex digits the hub printed (`certfleet endpoint enroll-token NAME`)',
    );
  }
  const bootstrap = new AgentClient(hub, undefined, undefined, { insecureSkipVerify: true });
  let ca: HubCaResponse;
  try {
    ca = await bootstrap.ca(opts);
  } finally {
    bootstrap.close();
  }
  let got: string;
  try {
    got = certFingerprint(ca.rootPem);
  } catch {
    throw new CertfleetError('UNREACHABLE', `the hub at ${hub} sent no valid CA certificate`, 'check --hub');
  }
  if (got !== want) {
    throw new CertfleetError(
      'UNAUTHENTICATED',
      `the hub CA fingerprint is ${got}, not the expected ${want}`,
      'check --hub and --ca-fingerprint; a mismatch may mean someone is intercepting the connection',
    );
  }
  const pinned = new AgentClient(hub, ca.rootPem);
  try {
    await pinned.ca(opts); // full TLS verification against the pinned root only
  } finally {
    pinned.close();
  }
  return ca.rootPem;
}
