import { readFile } from 'node:fs/promises';
import { CertfleetError, errorMessage } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { resolvePasswordRef } from '../../formats/password-ref.ts';
import { AcmeIssuer } from '../../issuers/acme/acme-issuer.ts';
import {
  startHttp01Listener,
  type Http01Listener,
  type Http01TokenStore,
} from '../../solvers/http01-responder.ts';
import { createSolver } from '../../solvers/registry.ts';
import type { Solver, SolverSelector } from '../../solvers/solver.ts';
import { resolveBudgetConfig, type BudgetConfig, type LimitName } from '../planner/rate-limit-budget.ts';
import type { HubContext } from '../hub-context.ts';
import type { AcmeIssuerConfig, RateLimitsConfig } from './acme-config.ts';
import type { Store } from '../../store/store.ts';
import { SealedAccountStore } from './sealed-account-store.ts';

/** One configured ACME issuer with what the planner and the dry run need beside it. */
export interface AcmeIssuerEntry {
  config: AcmeIssuerConfig;
  issuer: AcmeIssuer;
  /** Trust for the directory's TLS (caFile), for ARI fetches. */
  caPem?: string;
  budget: BudgetConfig;
  /** The issuer dry runs use: the staging directory when configured, else this issuer's own directory. */
  dryRunIssuer(): AcmeIssuer;
  close(): void;
}

export interface AcmeRuntime {
  entries: Map<string, AcmeIssuerEntry>;
  /** Where http-01 answers live; the hub route and the standalone listener read it. */
  http01Store: Http01TokenStore;
  /** Port of the standalone http-01 listener, when configured. */
  http01Port?: number;
  close(): Promise<void>;
}

export interface AcmeSettings {
  issuers?: AcmeIssuerConfig[];
  http01?: { listen?: string };
}

const configError = (path: string, message: string, hint: string, cause?: unknown) =>
  new CertfleetError('CONFIG_INVALID', `hub config ${path}: ${message}`, hint, { cause });

/** Budget overrides from config (seconds) into the planner's form (milliseconds). */
export function budgetFromConfig(rl: RateLimitsConfig | undefined): BudgetConfig {
  const limits: Partial<Record<LimitName, { count: number; windowMs: number } | null>> = {};
  for (const [name, spec] of Object.entries(rl?.limits ?? {}))
    limits[name as LimitName] = spec ? { count: spec.count, windowMs: spec.windowSeconds * 1000 } : null;
  return resolveBudgetConfig({
    limits,
    ...(rl?.nonUrgentFraction !== undefined ? { nonUrgentFraction: rl.nonUrgentFraction } : {}),
    ...(rl?.ariRenewalsExempt !== undefined ? { ariRenewalsExempt: rl.ariRenewalsExempt } : {}),
    ...(rl?.exactSetRenewalsExempt !== undefined
      ? { exactSetRenewalsExempt: rl.exactSetRenewalsExempt }
      : {}),
  });
}

/**
 * Picks per identifier: the first solver (config order) whose `domains` cover the name (or that has none) and
 * whose type the CA offers; wildcards take dns-01 only (RFC 8555 section 7.1.3).
 */
export function selectSolvers(entries: Array<{ solver: Solver; domains?: string[] }>): SolverSelector {
  return (identifier, offered) => {
    const name = identifier.value.toLowerCase();
    return entries.find(
      ({ solver, domains }) =>
        offered.includes(solver.type) &&
        (!identifier.wildcard || solver.type === 'dns-01') &&
        (!domains ||
          domains.some((d) => {
            const s = d.toLowerCase().replace(/^\*?\.?/, '');
            return name === s || name.endsWith(`.${s}`);
          })),
    )?.solver;
  };
}

async function buildEntry(
  cfg: AcmeIssuerConfig,
  index: number,
  ctx: HubContext,
  http01Store: Http01TokenStore,
  env: NodeJS.ProcessEnv,
): Promise<AcmeIssuerEntry> {
  const path = `issuers[${index}]`;
  let caPem: string | undefined;
  if (cfg.caFile) {
    try {
      caPem = await readFile(cfg.caFile, 'utf8');
    } catch (e) {
      throw configError(
        `${path}.caFile`,
        `cannot read ${cfg.caFile} (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)})`,
        'point caFile at the PEM of the CA that signs the directory TLS certificate',
      );
    }
  }
  let eab: { kid: string; hmacKey: string } | undefined;
  if (cfg.eab) {
    let hmacKey: string;
    try {
      hmacKey = await resolvePasswordRef(cfg.eab.hmacKeyRef, env);
    } catch (e) {
      throw configError(
        `${path}.eab.hmacKeyRef`,
        errorMessage(e).replace('password reference', 'EAB HMAC key reference'),
        'set the variable or file to the base64url HMAC key your CA gave you with the key id',
      );
    }
    if (!/^[A-Za-z0-9_-]+={0,2}$/.test(hmacKey.trim()))
      throw configError(
        `${path}.eab.hmacKeyRef`,
        'the EAB HMAC key is not base64url (its value is not shown)',
        'copy the HMAC key exactly as the CA shows it',
      );
    eab = { kid: cfg.eab.kid, hmacKey: hmacKey.trim() };
  }
  const solvers = cfg.solvers.map((s, i) => {
    const { domains, ...solverConfig } = s;
    try {
      return { solver: createSolver(solverConfig, { http01Store }), domains };
    } catch (e) {
      throw configError(`${path}.solvers[${i}]`, errorMessage(e), 'fix the solver settings');
    }
  });
  const accountStore = new SealedAccountStore(ctx.store, ctx.sealer);
  const logger = ctx.logger.child({ issuer: cfg.name });
  const make = (directoryUrl: string) =>
    new AcmeIssuer({
      name: cfg.name,
      directoryUrl,
      ...(cfg.email ? { email: cfg.email } : {}),
      termsOfServiceAgreed: cfg.termsOfServiceAgreed,
      ...(eab ? { eab } : {}),
      ...(caPem ? { caPem } : {}),
      ...(cfg.profile ? { defaultProfile: cfg.profile } : {}),
      accountStore,
      solvers: selectSolvers(solvers),
      logger,
    });
  const issuer = make(cfg.directoryUrl);
  let staging: AcmeIssuer | undefined;
  let budget: BudgetConfig;
  try {
    budget = budgetFromConfig(cfg.rateLimits);
  } catch (e) {
    throw configError(`${path}.rateLimits`, errorMessage(e), 'fix the rateLimits section');
  }
  return {
    config: cfg,
    issuer,
    ...(caPem ? { caPem } : {}),
    budget,
    dryRunIssuer: () => (cfg.staging ? (staging ??= make(cfg.staging.directoryUrl)) : issuer),
    close: () => {
      issuer.close();
      staging?.close();
    },
  };
}

/** http-01 answers kept in the store (shared by the hubs of a cluster). */
export function storeHttp01Tokens(store: Store): Http01TokenStore {
  return {
    put: (token, keyAuthorization) => store.putHttp01Token(token, keyAuthorization),
    get: (token) => store.getHttp01Token(token),
    delete: (token) => store.deleteHttp01Token(token),
  };
}

/** Builds the configured ACME issuers into `ctx.issuers` and starts the standalone http-01 listener if asked. */
export async function startAcme(
  settings: AcmeSettings,
  ctx: HubContext,
  env: NodeJS.ProcessEnv = process.env,
  logger: Logger = ctx.logger,
): Promise<AcmeRuntime> {
  // in the store, so every hub of a cluster answers the CA whichever placed the order
  const http01Store = storeHttp01Tokens(ctx.store);
  const entries = new Map<string, AcmeIssuerEntry>();
  const list = settings.issuers ?? [];
  for (const [i, cfg] of list.entries()) {
    const entry = await buildEntry(cfg, i, ctx, http01Store, env);
    entries.set(cfg.name, entry);
    ctx.issuers.set(cfg.name, entry.issuer);
  }
  let listener: Http01Listener | undefined;
  if (settings.http01?.listen) {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(settings.http01.listen)!;
    const [host, port] = [m[1] ?? m[2], Number(m[3])];
    try {
      listener = await startHttp01Listener({ host, port, store: http01Store });
    } catch (e) {
      for (const en of entries.values()) en.close();
      throw configError(
        'http01.listen',
        `cannot listen on ${settings.http01.listen} (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)})`,
        'pick a free address; ports below 1024 need root or CAP_NET_BIND_SERVICE',
      );
    }
    logger.info({ listen: settings.http01.listen, port: listener.port }, 'http-01 listener started');
  }
  return {
    entries,
    http01Store,
    ...(listener ? { http01Port: listener.port } : {}),
    async close() {
      await listener?.close();
      for (const en of entries.values()) en.close();
    },
  };
}
