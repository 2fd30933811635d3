import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import type { Agent } from 'node:https';
import { isIP } from 'node:net';
import acme from 'acme-client';
import { CertfleetError, errorMessage, isCertfleetError } from '../../core/errors.ts';
import { generatePrivateKeyPem, keyTypeOf } from '../../pki/keys.ts';
import { parsePrivateKey } from '../../pki/private-key.ts';
import { certMatchesKey, splitPemCertificates } from '../../pki/inspect.ts';
import type { Issuer, IssueRequest, IssuedVersion } from '../issuer.ts';
import type { KeyType } from '../../core/types.ts';
import type { ChallengeInput, ChallengeType, Solver, SolverSelector } from '../../solvers/solver.ts';
import type { AccountStore, AcmeAccount } from './account-store.ts';
import { ariCertId } from './ari.ts';
import { fetchDirectory, offeredProfiles, type AcmeDirectory } from './directory.ts';
import { NoncePool } from './nonce-pool.ts';
import { isProblem, problemError, shortType } from './problem.ts';
import { agentFor, parseBody, rawRequest, retryAfterSeconds, sleep, type AcmeResponse } from './transport.ts';

/** Sent with every request to the CA (signed requests and newNonce alike). */
const USER_AGENT = 'certfleet (acme-client 5.4)';

/** Minimal structured logger (pino-compatible). */
export interface IssuerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface AcmeIssuerOptions {
  name: string;
  directoryUrl: string;
  email?: string;
  /** Must be true to register an account: the operator agrees to the CA's terms of service. */
  termsOfServiceAgreed: boolean;
  /** External account binding (RFC 8555 section 7.3.4), for CAs that require it. */
  eab?: { kid: string; hmacKey: string };
  /** Extra trust for the directory's TLS (a private CA, pebble); applies to this issuer only. */
  caPem?: string;
  accountStore: AccountStore;
  solvers: SolverSelector;
  logger?: IssuerLogger;
  /** The profile ordered when a request names none (the issuer's `profile` setting). */
  defaultProfile?: string;
  /** How long to wait for an authorization or order to leave `pending`/`processing`. Default 120 s. */
  pollTimeoutMs?: number;
}

/** RFC 5280 section 5.3.1 CRLReason names and codes. */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

type AcmeClient = InstanceType<typeof acme.Client>;

/** A CSR for `names` (the common name: the first that fits one) with `keyPem`. */
async function csrFor(names: string[], keyPem: string): Promise<Buffer> {
  const cn = names.find((n) => !n.startsWith('*.') && n.length <= 64);
  const [, csr] = await acme.crypto.createCsr({ commonName: cn, altNames: names }, keyPem);
  return csr;
}
type Authz = acme.Authorization;
type Order = acme.Order;

/** Poll state: RFC 8555 section 7.1.6. */
const PENDING = new Set(['pending', 'processing', 'ready']);

/**
 * Issues certificates from any RFC 8555 CA through acme-client. acme-client does the JWS signing, nonces and
 * badNonce retries; certfleet supplies the transport (per-issuer TLS trust, AbortSignal, problem documents as
 * CertfleetErrors), the polling, the ARI `replaces` field and the solver orchestration.
 */
export class AcmeIssuer implements Issuer {
  readonly kind = 'acme';
  readonly name: string;
  private readonly opts: AcmeIssuerOptions;
  private readonly agent?: Agent;
  private directoryCache?: { dir: AcmeDirectory; at: number };
  private accountReady?: Promise<Required<AcmeAccount>>;
  /** Nonces from the CA's answers, shared by every order of this issuer. */
  private readonly nonces = new NoncePool();
  /** The account key parsed once (see signingKey). */
  private accountKey?: { pem: string; key: KeyObject; jwk: object };

  constructor(opts: AcmeIssuerOptions) {
    this.opts = opts;
    this.name = opts.name;
    this.agent = agentFor(opts.caPem);
  }

  /** Releases pooled TLS connections. */
  close(): void {
    this.agent?.destroy();
  }

  /** The CA's directory, cached for an hour. */
  async directory(signal?: AbortSignal): Promise<AcmeDirectory> {
    if (this.directoryCache && Date.now() - this.directoryCache.at < 3_600_000)
      return this.directoryCache.dir;
    const dir = await fetchDirectory(this.opts.directoryUrl, { agent: this.agent, signal });
    this.directoryCache = { dir, at: Date.now() };
    return dir;
  }

  async issue(req: IssueRequest): Promise<IssuedVersion> {
    const { signal } = req;
    req = { ...req, profile: req.profile ?? this.opts.defaultProfile };
    const names = [...new Set(req.sans.map((n) => n.trim().toLowerCase()))];
    const ctx = `[${names.join(', ')}]`;
    if (!names.length)
      throw new CertfleetError('BAD_REQUEST', 'no names to issue for', 'give at least one SAN');
    let step = 'directory';
    let mark = Date.now();
    const done = (name: string, detail: string) => {
      const now = Date.now();
      req.onStep?.({ name, detail, ms: now - mark });
      mark = now;
    };
    try {
      let dir = await this.directory(signal);
      if (req.profile !== undefined && !offeredProfiles(dir).includes(req.profile)) {
        // The cached directory may predate a profile the CA added: look again before refusing.
        step = 'profile';
        this.directoryCache = undefined;
        dir = await this.directory(signal);
        this.checkProfile(dir, req.profile);
      }
      step = 'account';
      const client = await this.client(dir, signal);
      done('account', `account ${client.getAccountUrl()} at ${this.opts.directoryUrl}`);
      step = 'resume';
      const resumed = await this.resume(client, req, names, ctx, signal);
      if (resumed) {
        done('download', 'certificate of the order an earlier attempt finalized');
        return resumed;
      }
      step = 'key';
      const keyPem = await generatePrivateKeyPem(req.keyType);
      const csr = await csrFor(names, keyPem);

      step = 'new order';
      const payload: Record<string, unknown> = {
        identifiers: names.map((value) => ({ type: isIP(value) ? 'ip' : 'dns', value })),
      };
      if (req.replacesCertPem && dir.renewalInfo) payload.replaces = ariCertId(req.replacesCertPem);
      if (req.profile !== undefined) payload.profile = req.profile;
      let order = await client.createOrder(payload as any).catch(async (e: unknown) => {
        throw await this.profileError(e, req.profile, signal);
      });
      this.opts.logger?.info({ issuer: this.name, names, order_url: order.url }, 'acme order created');
      done(
        'order',
        `order ${order.url}${payload.profile ? ` (profile ${payload.profile})` : ''}${payload.replaces ? ` (replaces ${payload.replaces})` : ''}`,
      );

      step = 'authorizations';
      if (order.status === 'ready') {
        // Every authorization is already valid (RFC 8555 section 7.1.6; the CA reused them): nothing to read or
        // answer, one signed request per name saved on every renewal within the CA's reuse period.
        done('authorizations', `${order.authorizations.length} authorization(s), all valid (order ready)`);
        done('challenge', 'none to answer');
      } else {
        const authzs = await client.getAuthorizations(order);
        const pending = authzs.filter((a) => a.status !== 'valid').length;
        done('authorizations', `${authzs.length} authorization(s), ${pending} pending`);
        await this.authorizeAll(client, authzs, signal);
        done('challenge', `${pending} challenge(s) answered and validated`);
      }

      step = 'finalize';
      // durable before finalize: should this hub die before the version is stored, the next attempt resumes it
      await req.orders?.record({ issuer: this.name, orderUrl: order.url, keyPem });
      order = await this.finalize(client, order, csr, ctx, signal);
      done('finalize', `order ${order.status}`);
      step = 'download';
      const issued = await this.download(client, order, keyPem, ctx);
      this.opts.logger?.info({ issuer: this.name, names, order_url: order.url }, 'acme certificate issued');
      done('download', `certificate and ${issued.chainPems.length} chain certificate(s)`);
      return issued;
    } catch (e) {
      throw this.wrap(e, `${ctx} ${step}`, signal);
    }
  }

  /**
   * The certificate of the order an earlier attempt recorded before finalizing (its hub stopped before storing the
   * version), for the same names at this issuer: finalized now if the CA still has it `ready`, downloaded once
   * valid. Undefined when there is nothing to resume (none, another issuer's or other names, gone, or
   * pending/invalid at the CA): then a new order is placed.
   */
  private async resume(
    client: AcmeClient,
    req: IssueRequest,
    names: string[],
    ctx: string,
    signal?: AbortSignal,
  ): Promise<IssuedVersion | undefined> {
    const pending = await req.orders?.pending();
    if (!pending || pending.issuer !== this.name) return undefined;
    let order: Order;
    try {
      order = { ...(await client.getOrder({ url: pending.orderUrl } as Order)), url: pending.orderUrl };
    } catch (e) {
      this.opts.logger?.warn(
        { issuer: this.name, order_url: pending.orderUrl, err: errorMessage(e) },
        'acme: the order recorded before finalize cannot be read; placing a new one',
      );
      return undefined;
    }
    const ordered = order.identifiers.map((i) => i.value.toLowerCase()).sort();
    if (ordered.join(',') !== [...names].sort().join(',')) return undefined;
    // a certificate whose key type changed since the order was placed wants a new key, not the recorded one
    if (!isKeyOfType(pending.keyPem, req.keyType)) return undefined;
    if (!['ready', 'processing', 'valid'].includes(order.status)) return undefined;
    let issued: IssuedVersion;
    try {
      if (order.status === 'ready')
        order = await this.finalize(client, order, await csrFor(names, pending.keyPem), ctx, signal);
      else order = (await this.poll(client, order.url, 'order', ctx, signal)) as Order;
      issued = await this.download(client, order, pending.keyPem, ctx);
    } catch (e) {
      if (signal?.aborted) throw e;
      // the recorded order must never block renewal: one that cannot be completed gives way to a new order
      this.opts.logger?.warn(
        { issuer: this.name, order_url: pending.orderUrl, err: errorMessage(e) },
        'acme: the order recorded before finalize cannot be completed; placing a new one',
      );
      return undefined;
    }
    this.opts.logger?.info(
      { issuer: this.name, names, order_url: order.url },
      'acme certificate issued (resumed the order an earlier attempt finalized)',
    );
    return issued;
  }

  private async finalize(
    client: AcmeClient,
    order: Order,
    csr: Buffer,
    ctx: string,
    signal?: AbortSignal,
  ): Promise<Order> {
    order = await client.finalizeOrder(order, csr);
    return (await this.poll(client, order.url, 'order', ctx, signal)) as Order;
  }

  /** The valid order's certificate and chain, checked against the key its CSR was made with. */
  private async download(
    client: AcmeClient,
    order: Order,
    keyPem: string,
    ctx: string,
  ): Promise<IssuedVersion> {
    const pem = await client.getCertificate(order);
    const [certPem, ...chainPems] = splitPemCertificates(String(pem));
    if (!certPem || !certMatchesKey(certPem, keyPem)) {
      throw new CertfleetError(
        'ACME_ERROR',
        `${ctx} the CA returned a certificate that does not match the requested key`,
        'the CA answer is garbage: report it to the CA operator',
      );
    }
    return { certPem, chainPems, keyPem };
  }

  /** Revokes a certificate this account (or its key) may revoke, with an RFC 5280 reason. */
  async revoke(
    certPem: string,
    reason: RevocationReason = 'unspecified',
    signal?: AbortSignal,
  ): Promise<void> {
    if (!(reason in REVOCATION_REASONS)) {
      throw new CertfleetError(
        'BAD_REQUEST',
        `unknown revocation reason "${reason}"`,
        `use one of: ${Object.keys(REVOCATION_REASONS).join(', ')}`,
      );
    }
    try {
      const client = await this.client(await this.directory(signal), signal);
      await client.revokeCertificate(certPem, { reason: REVOCATION_REASONS[reason] });
      this.opts.logger?.info({ issuer: this.name, reason }, 'acme certificate revoked');
    } catch (e) {
      throw this.wrap(e, 'revoke', signal);
    }
  }

  /** Refuses a profile the directory does not advertise, naming those it does. */
  private checkProfile(dir: AcmeDirectory, profile: string): void {
    const offered = offeredProfiles(dir);
    if (offered.includes(profile)) return;
    throw new CertfleetError(
      'CONFIG_INVALID',
      offered.length
        ? `ACME issuer "${this.name}" does not offer profile "${profile}"; it offers: ${offered.join(', ')}`
        : `ACME issuer "${this.name}" offers no profiles (its directory has no meta.profiles), so profile "${profile}" cannot be ordered`,
      offered.length
        ? `set the certificate's profile to one of: ${offered.join(', ')} (or remove it for the CA's default)`
        : "remove the profile from the certificate (and the issuer's default profile), or use a CA that offers profiles",
      { details: { profile, offered } },
    );
  }

  /** The CA's `invalidProfile` (its profiles changed since we read the directory) names what it offers now. */
  private async profileError(
    e: unknown,
    profile: string | undefined,
    signal?: AbortSignal,
  ): Promise<unknown> {
    if (
      profile === undefined ||
      !isCertfleetError(e) ||
      shortType(e.details?.type as string) !== 'invalidProfile'
    )
      return e;
    this.directoryCache = undefined;
    const offered = offeredProfiles(await this.directory(signal).catch(() => ({}) as AcmeDirectory));
    return new CertfleetError(
      'CONFIG_INVALID',
      `${e.message} (the directory offered: ${offered.length ? offered.join(', ') : 'no profiles'})`,
      offered.length
        ? `set the certificate's profile to one of: ${offered.join(', ')} (or remove it for the CA's default)`
        : 'remove the profile from the certificate',
      { cause: e, details: { ...e.details, profile, offered } },
    );
  }

  /** Errors users see are CertfleetErrors; an abort stays an abort. */
  private wrap(e: unknown, context: string, signal?: AbortSignal): unknown {
    if (signal?.aborted) return signal.reason;
    if (isCertfleetError(e)) {
      if (e.message.startsWith('[') || context === 'revoke') return e;
      return new CertfleetError(e.code, `${context}: ${e.message}`, e.hint, {
        cause: e.cause,
        details: e.details,
      });
    }
    return new CertfleetError(
      'ACME_ERROR',
      `${context}: ${errorMessage(e)}`,
      'see the message; retry later',
      {
        cause: e,
      },
    );
  }

  /** A fresh acme-client Client bound to this call's signal, with the account registered. */
  private async client(dir: AcmeDirectory, signal?: AbortSignal): Promise<AcmeClient> {
    this.accountReady ??= this.ensureAccount(dir, signal).catch((e) => {
      this.accountReady = undefined;
      throw e;
    });
    const account = await this.accountReady;
    return this.makeClient(dir, account.accountKeyPem, account.accountUrl, signal);
  }

  private makeClient(
    dir: AcmeDirectory,
    keyPem: string,
    accountUrl?: string,
    signal?: AbortSignal,
  ): AcmeClient {
    const client = new acme.Client({
      directoryUrl: this.opts.directoryUrl,
      accountKey: keyPem,
      ...(accountUrl ? { accountUrl } : {}),
      ...(this.opts.eab ? { externalAccountBinding: this.opts.eab } : {}),
    });
    // acme-client sends through one global axios instance; replace this client's transport so TLS trust,
    // cancellation and problem handling stay per issuer and per call.
    const http = (client as any).http;
    // acme-client keeps the PEM and parses it again for every signature (≈ 1.5 ms each with OpenSSL 3's decoders,
    // ≈ 13 % of the hub's CPU in a mass reissue) and once per client for the JWK: give it the parsed key.
    const signing = this.signingKey(keyPem);
    http.accountKey = signing.key;
    http.jwk = signing.jwk;
    http.directoryCache = dir;
    http.directoryTimestamp = Math.floor(Date.now() / 1000);
    http.request = (url: string, method: string, opts: { data?: unknown } = {}) =>
      this.send(url, method, opts.data, signal);
    http.getNonce = () => this.nonce(dir, signal);
    return client;
  }

  private signingKey(pem: string): { key: KeyObject; jwk: object } {
    if (this.accountKey?.pem !== pem)
      this.accountKey = { pem, key: createPrivateKey(pem), jwk: acme.crypto.getJwk(pem) };
    return this.accountKey;
  }

  /**
   * A nonce for the next signed request: one kept from an earlier answer, else a fresh one from newNonce by GET
   * (RFC 8555 section 7.2 allows GET or HEAD; a GET answer keeps the TLS connection open, a HEAD answer did not).
   */
  private async nonce(dir: AcmeDirectory, signal?: AbortSignal): Promise<string> {
    const kept = this.nonces.take();
    if (kept) return kept;
    const res = await rawRequest(dir.newNonce, {
      headers: { 'user-agent': USER_AGENT },
      agent: this.agent,
      signal,
    });
    const nonce = res.headers['replay-nonce'];
    if (res.status >= 400 || !nonce) {
      throw new CertfleetError(
        'ACME_ERROR',
        `newNonce ${dir.newNonce} answered HTTP ${res.status}${nonce ? '' : ' without a Replay-Nonce'}`,
        'the CA may be down or the directory URL wrong: check the directory and retry later',
        { details: { url: dir.newNonce, status: res.status } },
      );
    }
    return nonce;
  }

  private async ensureAccount(dir: AcmeDirectory, signal?: AbortSignal): Promise<Required<AcmeAccount>> {
    const url = this.opts.directoryUrl;
    const stored = await this.opts.accountStore.load(url);
    if (stored?.accountUrl) return stored as Required<AcmeAccount>;
    if (!this.opts.termsOfServiceAgreed) {
      const tos = dir.meta?.termsOfService;
      throw new CertfleetError(
        'CONFIG_INVALID',
        `ACME issuer "${this.name}" cannot register an account: termsOfServiceAgreed is not true`,
        `read the CA's terms${tos ? ` at ${tos}` : ''} and set termsOfServiceAgreed: true for this issuer`,
      );
    }
    const accountKeyPem = stored?.accountKeyPem ?? (await generatePrivateKeyPem('ecdsa-p256'));
    // Keep the key before registering so a crash in between does not orphan a registered account.
    if (!stored) await this.opts.accountStore.save(url, { accountKeyPem });
    const client = this.makeClient(dir, accountKeyPem, undefined, signal);
    try {
      await client.createAccount({
        termsOfServiceAgreed: true,
        ...(this.opts.email ? { contact: [`mailto:${this.opts.email}`] } : {}),
      });
    } catch (e) {
      throw this.eabError(e);
    }
    const account = { accountKeyPem, accountUrl: client.getAccountUrl() };
    await this.opts.accountStore.save(url, account);
    this.opts.logger?.info({ issuer: this.name, account_url: account.accountUrl }, 'acme account registered');
    return account;
  }

  /**
   * newAccount problems caused by external account binding get an EAB hint: the generic `unauthorized` hint
   * talks about challenges, which is wrong here. Only the kid is named; the HMAC key never appears.
   */
  private eabError(e: unknown): unknown {
    if (!isCertfleetError(e) || e.code !== 'ACME_ERROR') return e;
    const type = shortType(e.details?.type as string | undefined);
    const details = { ...e.details, ...(this.opts.eab ? { eabKid: this.opts.eab.kid } : {}) };
    if (type === 'externalAccountRequired') {
      return new CertfleetError(
        'ACME_ERROR',
        `the CA requires external account binding (EAB) to register an account: ${e.message}`,
        this.opts.eab
          ? `the CA did not accept the EAB sent with kid "${this.opts.eab.kid}": check eab.kid and the HMAC key (eab.hmacKeyRef) against the CA's values`
          : `set eab.kid and eab.hmacKeyRef on issuer "${this.name}" to the key id and HMAC key the CA gave you`,
        { cause: e, details },
      );
    }
    if (
      this.opts.eab &&
      (type === 'unauthorized' || type === 'malformed' || type === 'unauthorizedAccount')
    ) {
      return new CertfleetError(
        'ACME_ERROR',
        `the CA rejected the external account binding (EAB kid "${this.opts.eab.kid}"): ${e.message}`,
        `check eab.kid and the HMAC key behind eab.hmacKeyRef on issuer "${this.name}" against the values the CA gave you (copied whole, base64url; some CAs make them single-use or let them expire)`,
        { cause: e, details },
      );
    }
    return e;
  }

  /** One ACME HTTP exchange for acme-client: problem documents (except badNonce) become CertfleetErrors. */
  private async send(
    url: string,
    method: string,
    data: unknown,
    signal?: AbortSignal,
  ): Promise<AcmeResponse> {
    for (let attempt = 0; ; attempt++) {
      const res = await rawRequest(url, {
        method: method.toUpperCase(),
        headers: {
          'content-type': 'application/jose+json',
          'user-agent': USER_AGENT,
        },
        body: data === undefined ? undefined : JSON.stringify(data),
        agent: this.agent,
        signal,
      });
      const wait = retryAfterSeconds(res.headers['retry-after']);
      // Rate limits and outages: honour short Retry-After a few times; long ones are the planner's business.
      if ((res.status === 429 || res.status === 503) && attempt < 3 && (wait ?? 1) <= 30) {
        await sleep((wait ?? attempt + 1) * 1000, signal);
        continue;
      }
      const body = parseBody(res);
      const badNonce =
        res.status >= 400 && isProblem(body) && body.type === 'urn:ietf:params:acme:error:badNonce';
      // every answer to a POST carries a fresh nonce, except that acme-client retries a badNonce with its own
      if (method.toLowerCase() === 'post' && !badNonce) this.nonces.keep(res.headers['replay-nonce']);
      if (res.status >= 400) {
        if (isProblem(body)) {
          if (badNonce) {
            // acme-client retries these with the fresh nonce from the answer (RFC 8555 section 6.5).
            this.opts.logger?.info({ issuer: this.name, url }, 'acme badNonce, retrying');
            return { ...res, data: body };
          }
          throw problemError({ ...body, status: body.status ?? res.status }, undefined, wait);
        }
        throw new CertfleetError(
          'ACME_ERROR',
          `${new URL(url).pathname} answered HTTP ${res.status} without an ACME problem document`,
          'a proxy or a non-ACME server may be in the way: check the directory URL',
          {
            details: { url, status: res.status, ...(wait !== undefined ? { retryAfterSeconds: wait } : {}) },
          },
        );
      }
      if (method !== 'head' && res.status !== 204 && res.body.length && body === undefined) {
        throw new CertfleetError('ACME_ERROR', `${url} sent an unreadable answer`, 'check the directory URL');
      }
      return { status: res.status, headers: res.headers, data: body };
    }
  }

  /** POST-as-GET until the resource leaves pending/processing (RFC 8555 section 7.5.1, 7.4). */
  private async poll(
    client: AcmeClient,
    url: string,
    what: 'authorization' | 'order',
    ctx: string,
    signal?: AbortSignal,
  ): Promise<Authz | Order> {
    const deadline = Date.now() + (this.opts.pollTimeoutMs ?? 120_000);
    let delay = 100;
    for (;;) {
      const resp: AcmeResponse = await (client as any).api.apiRequest(url, null, [200]);
      const item = { ...resp.data, url };
      if (item.status === 'valid' && (what === 'authorization' || item.certificate)) return item;
      if (
        item.status === 'invalid' ||
        item.status === 'deactivated' ||
        item.status === 'revoked' ||
        item.status === 'expired'
      ) {
        const problem =
          item.error ?? item.challenges?.find((c: { error?: unknown }) => c.error)?.error ?? undefined;
        if (problem)
          throw problemError(problem, what === 'authorization' ? `${item.identifier?.value}` : undefined);
        throw new CertfleetError(
          'ACME_ERROR',
          `${ctx} ${what} became ${item.status}`,
          'retry; if it repeats, check the CA status page',
        );
      }
      if (!PENDING.has(item.status) && item.status !== 'valid') {
        throw new CertfleetError(
          'ACME_ERROR',
          `${ctx} ${what} has unknown status "${item.status}"`,
          'the CA answer is garbage',
        );
      }
      if (Date.now() > deadline) {
        throw new CertfleetError(
          'ACME_ERROR',
          `${ctx} ${what} still ${item.status} after ${Math.round((this.opts.pollTimeoutMs ?? 120_000) / 1000)} s`,
          'the CA is slow or stuck: retry later',
        );
      }
      const hinted = retryAfterSeconds(resp.headers['retry-after']);
      await sleep(Math.min(hinted !== undefined ? hinted * 1000 : delay, 5000), signal);
      delay = Math.min(delay * 2, 2000);
    }
  }

  /**
   * Answers every pending authorization in parallel. Whatever happens, every presented challenge is cleaned up
   * (cleanup errors are logged, never thrown over the first error); on failure, authorizations that are still
   * pending or valid are deactivated so the CA does not keep them for reuse.
   */
  private async authorizeAll(client: AcmeClient, authzs: Authz[], signal?: AbortSignal): Promise<void> {
    const presented: Array<{ solver: Solver; input: ChallengeInput }> = [];
    try {
      const results = await Promise.allSettled(
        authzs.map((a) => this.authorize(client, a, presented, signal)),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        await this.deactivate(client, authzs);
        throw failed.reason;
      }
    } finally {
      const cleanups = await Promise.allSettled(presented.map(({ solver, input }) => solver.cleanup(input)));
      cleanups.forEach((r, i) => {
        if (r.status === 'rejected') {
          this.opts.logger?.warn(
            {
              issuer: this.name,
              identifier: presented[i].input.identifier,
              solver: presented[i].solver.type,
              err: errorMessage(r.reason),
            },
            'challenge cleanup failed',
          );
        }
      });
    }
  }

  private async authorize(
    client: AcmeClient,
    authz: Authz,
    presented: Array<{ solver: Solver; input: ChallengeInput }>,
    signal?: AbortSignal,
  ): Promise<void> {
    if (authz.status === 'valid') return;
    const identifier = authz.identifier.value;
    const wildcard = Boolean(authz.wildcard);
    const offered = authz.challenges.map((c) => c.type as ChallengeType);
    const solver = this.opts.solvers({ value: identifier, wildcard }, offered);
    const challenge = solver && authz.challenges.find((c) => c.type === solver.type);
    if (!solver || !challenge) {
      throw new CertfleetError(
        'CONFIG_INVALID',
        `no solver for ${wildcard ? '*.' : ''}${identifier}: the CA offers ${offered.join(', ')}`,
        wildcard
          ? 'wildcard names need a dns-01 solver: configure one for this domain'
          : 'configure a solver of one of the offered types for this domain',
      );
    }
    const keyAuthorization = await client.getChallengeKeyAuthorization({
      ...challenge,
      type: 'http-01',
    } as any);
    const input: ChallengeInput = {
      identifier,
      token: challenge.token,
      keyAuthorization,
      dnsValue: createHash('sha256').update(keyAuthorization).digest('base64url'),
    };
    presented.push({ solver, input });
    await solver.present(input, signal);
    signal?.throwIfAborted();
    await client.completeChallenge(challenge);
    await this.poll(client, authz.url, 'authorization', identifier, signal);
  }

  private async deactivate(client: AcmeClient, authzs: Authz[]): Promise<void> {
    await Promise.allSettled(
      authzs.map(async (a) => {
        try {
          const now = await (client as any).api.apiRequest(a.url, null, [200]);
          if (now.data.status === 'pending' || now.data.status === 'valid')
            await client.deactivateAuthorization(a);
        } catch (e) {
          this.opts.logger?.warn(
            { issuer: this.name, authz_url: a.url, err: errorMessage(e) },
            'authorization deactivation failed',
          );
        }
      }),
    );
  }
}

/** Whether `keyPem` is a key of `keyType`; a key that does not parse is not. */
function isKeyOfType(keyPem: string, keyType: KeyType): boolean {
  try {
    return keyTypeOf(parsePrivateKey(keyPem)) === keyType;
  } catch {
    return false;
  }
}
