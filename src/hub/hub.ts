import type { FastifyInstance } from 'fastify';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock } from '../core/clock.ts';
import { CertfleetError } from '../core/errors.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { InternalCa } from '../issuers/internal/internal-ca.ts';
import type { Issuer } from '../issuers/issuer.ts';
import type { Store } from '../store/store.ts';
import { buildApp } from './api/build-app.ts';
import { createAgentProtocol, type AgentProtocol } from './agent-protocol/agent-config.ts';
import { checkAdminTokenPreset, ensureAdminToken } from './auth.ts';
import { writeAdminTokenFile } from './admin-token-file.ts';
import { openDataDir } from './data-dir.ts';
import { CertificateService } from './certificate-service.ts';
import type { HubContext } from './hub-context.ts';
import { hubTlsCertificate, hubTlsNames } from './hub-tls.ts';
import { loadHubConfig, type HubConfig } from './hub-config.ts';
import { startAcme, type AcmeRuntime } from './acme/acme-runtime.ts';
import { Issuance } from './renewal/issuance.ts';
import { RateLimitStore } from './renewal/rate-limit-store.ts';
import { RenewalService } from './renewal/renewal-service.ts';
import { PlannerService } from './planner-service.ts';
import { CampaignService } from './emergency/campaign-service.ts';
import { ConnectorService } from './connector-service.ts';
import { createVerification, type Verification } from './verification.ts';
import { BackupScheduler } from '../backup/backup-schedule.ts';
import { MAX_SKEW_MS } from '../protocol/request-signature.ts';
import { NoncePurge, StoreNonceLedger } from './agent-protocol/shared-nonces.ts';
import type pg from 'pg';
import { AdvisoryIssuanceLock } from '../store/postgres/advisory-lock.ts';
import { postgresPool } from '../store/postgres/open-postgres-store.ts';
import { LeaderJobs, leaseElection, soleHub, type LeaderJob } from './leader-jobs.ts';
import { DEFAULT_LAGGING } from './api/page-cache.ts';
import { parseTrustedProxies } from './api/trusted-proxies.ts';

/**
 * Connections waiting to be accepted (Node's default is 511; Linux caps it at net.core.somaxconn, 4096 by default).
 * Thousands of agents reconnect at once after a hub restart or failover; past the backlog their connections were
 * reset (ECONNRESET at 4,000 simultaneous TLS connects in a bare Node server) and each retry cost a handshake.
 */
const LISTEN_BACKLOG = 4096;

export interface HubOptions {
  dataDir: string;
  /** host:port; port 0 picks a free one. */
  listen: string;
  tls?: boolean;
  tlsNames?: string[];
  /**
   * Proxies in front of the hub whose X-Forwarded-For / X-Forwarded-Proto it believes (IP addresses, CIDR ranges;
   * src/hub/api/trusted-proxies.ts). Behind a TLS-terminating proxy (`tls: false`) the dashboard needs them.
   */
  trustedProxies?: string[];
  /** Parsed hub settings; `configPath` is read when this is absent. */
  config?: HubConfig;
  configPath?: string;
  clock?: Clock;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** postgres:// URL of the store; SQLite in the data directory when absent. */
  databaseUrl?: string;
  /** Tests: fail answers that their response schema would shrink (AppDeps.checkResponses). */
  checkResponses?: boolean;
}

export interface RunningHub {
  url: string;
  port: number;
  ctx: HubContext;
  app: FastifyInstance;
  certificates: CertificateService;
  /** The bootstrap admin token, only on the start that created it (never logged or printed by the hub). */
  adminToken?: string;
  /** Where that start wrote it (0600); absent when CERTFLEET_ADMIN_TOKEN preset it. */
  adminTokenFile?: string;
  caPem: string;
  caFingerprint: string;
  /** ACME issuers, http-01 answers, renewal and the planner loop (started unless `planner.enabled: false`). */
  acme?: AcmeRuntime;
  renewal: RenewalService;
  /** Agent protocol settings and the revision notifier that wakes long-polls. */
  agentProtocol: AgentProtocol;
  planner?: PlannerService;
  /** Emergency mass reissue campaigns (followed while the planner runs). */
  campaigns?: CampaignService;
  /** Probe scheduler, alert loop, metrics registry. */
  verification: Verification;
  /** Deploys to connector endpoints (SSH, local command) from the hub. */
  connectors: ConnectorService;
  /** Scheduled backups (with `backup:` in the hub config). */
  backups?: BackupScheduler;
  /** Whether this hub leads, and the jobs it runs then (planner, probes, alerts, backups, connectors). */
  leadership: LeaderJobs;
  close(): Promise<void>;
}

/** What the leader runs, in start order. */
function leaderJobs(parts: {
  config: HubConfig;
  planner: PlannerService;
  verification: Verification;
  connectors: ConnectorService;
  backups: BackupScheduler | undefined;
  campaigns: CampaignService;
}): LeaderJob[] {
  const { config, planner, verification, connectors, backups, campaigns } = parts;
  const jobs: LeaderJob[] = [];
  if (config.planner?.enabled !== false) {
    jobs.push(job('planner', planner));
    // campaigns follow what the planner issues, so they run where it runs
    jobs.push({
      name: 'emergency campaigns',
      start: () => campaigns.startWatching(),
      stop: () => campaigns.stop(),
    });
  }
  jobs.push({
    name: 'probes and alerts',
    start: () => verification.start(),
    stop: () => verification.pause(),
  });
  jobs.push(job('connectors', connectors));
  if (backups) jobs.push(job('backups', backups));
  return jobs;
}

const job = (name: string, s: { start(): void; stop(): Promise<void> }): LeaderJob => ({
  name,
  start: () => s.start(),
  stop: () => s.stop(),
});

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[3]) > 65535) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `invalid listen address "${listen}"`,
      'use HOST:PORT, e.g. 127.0.0.1:8443 or [::]:8443',
    );
  }
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/** Opens the store, unlocks secrets and the internal CA: everything the hub needs except the listener. */
export async function openHubContext(opts: {
  dataDir: string;
  clock?: Clock;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  store?: Store;
  databaseUrl?: string;
}): Promise<HubContext> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger();
  const { store, sealer } = await openDataDir({
    dataDir: opts.dataDir,
    clock,
    logger,
    env: opts.env ?? process.env,
    ...(opts.store ? { store: opts.store } : {}),
    ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}),
    create: true,
  });
  try {
    const internalCa = await InternalCa.open(store, sealer, clock);
    const issuers = new Map<string, Issuer>([['internal', internalCa]]);
    return { store, sealer, clock, logger, internalCa, issuers };
  } catch (e) {
    await store.close();
    throw e;
  }
}

export async function startHub(opts: HubOptions): Promise<RunningHub> {
  const env = opts.env ?? process.env;
  const { host, port } = parseListen(opts.listen);
  const config = opts.config ?? (await loadHubConfig(opts.configPath ?? env.CERTFLEET_HUB_CONFIG));
  checkAdminTokenPreset(env.CERTFLEET_ADMIN_TOKEN);
  const ctx = await openHubContext(opts);
  let acme: AcmeRuntime | undefined;
  let app: FastifyInstance | undefined;
  let planner: PlannerService | undefined;
  let campaigns: CampaignService | undefined;
  let verification: Verification | undefined;
  let connectors: ConnectorService | undefined;
  let backups: BackupScheduler | undefined;
  let leadership: LeaderJobs | undefined;
  let lockPool: pg.Pool | undefined;
  // Stops whatever has started, in reverse order; serves both close() and a start that fails halfway.
  let renewal: RenewalService | undefined;
  const stop = async () => {
    await leadership?.stop(); // gives the lease up first, so another hub takes over at once
    const aborted = renewal?.close(); // in-flight ACME orders are aborted at once, then awaited
    await campaigns?.stop();
    await planner?.stop();
    await connectors?.stop();
    await backups?.stop();
    await aborted;
    await verification?.stop();
    await app?.close();
    await acme?.close();
    // close() and a failed start's cleanup may both get here: end the pool once
    const pool = lockPool;
    lockPool = undefined;
    await pool?.end();
    await ctx.store.close();
  };
  try {
    const tls = opts.tls !== false;
    const trustedProxies = parseTrustedProxies(opts.trustedProxies ?? []);
    if (!tls && !trustedProxies.length) {
      ctx.logger.warn(
        'plain HTTP and no --trusted-proxy: behind a TLS-terminating proxy the dashboard refuses sign-in (its Origin is ' +
          'https, the hub sees http) and failed logins are counted against the proxy address; give the hub the ' +
          "proxy's address with --trusted-proxy (docs/ha.md)",
      );
    }
    const https = tls ? await hubTlsCertificate(ctx, hubTlsNames(host, opts.tlsNames)) : undefined;
    await writeFile(join(opts.dataDir, 'ca.pem'), ctx.internalCa.rootPem, { mode: 0o644 });
    acme = await startAcme(config, ctx, env);
    // One issuance path for every trigger; across the hubs of a cluster, one issuance per certificate at a time.
    if (opts.databaseUrl) lockPool = postgresPool(opts.databaseUrl, { logger: ctx.logger, max: 4 });
    const issuance = new Issuance(ctx, {
      rateLimits: new RateLimitStore(ctx, acme),
      ...(lockPool ? { lock: new AdvisoryIssuanceLock(lockPool) } : {}),
    });
    const certificates = new CertificateService(ctx, issuance);
    renewal = new RenewalService(ctx, issuance, acme);
    const concurrency = config.planner?.concurrency ?? 4;
    planner = new PlannerService(renewal, {
      intervalMs: (config.planner?.intervalSeconds ?? 60) * 1000,
      concurrency,
    });
    // A campaign only marks certificates due: the planner issues them (run at once on `campaign.changed`, below).
    campaigns = new CampaignService(ctx, renewal, { concurrency });
    const agentProtocol = createAgentProtocol(ctx.store, config.agent);
    // after the ACME issuers exist, so they are instrumented for metrics
    verification = createVerification(ctx, config);
    connectors = new ConnectorService(ctx, config.connectors);
    const plannedBy = renewal;
    verification.metrics.attach({
      renewalDue: async () =>
        (await plannedBy.plan()).map((e) => ({ certificate: e.certificateName, dueAt: e.dueAt })),
    });
    if (config.backup) {
      const metrics = verification.metrics;
      backups = new BackupScheduler(ctx, config.backup, {
        dataDir: opts.dataDir,
        env,
        ...((opts.configPath ?? env.CERTFLEET_HUB_CONFIG)
          ? { hubConfigPath: opts.configPath ?? env.CERTFLEET_HUB_CONFIG }
          : {}),
        onFailure: () => metrics.backupFailures.inc(),
      });
    }
    const leader = new LeaderJobs(
      opts.databaseUrl ? leaseElection(opts.databaseUrl, { logger: ctx.logger }) : soleHub,
      [
        ...leaderJobs({ config, planner, verification, connectors, backups, campaigns }),
        ...(opts.databaseUrl ? [new NoncePurge(ctx)] : []),
      ],
      ctx.logger,
    );
    leadership = leader;
    // a campaign started through any hub (LISTEN/NOTIFY carries the event) gets a pass from the leader's planner now
    ctx.store.events.on('campaign.changed', (e) => {
      if (e.change === 'started') planner?.requestRun();
    });
    verification.metrics.attach({ leader: () => leader.isLeader });
    app = await buildApp({
      ctx,
      leader: () => leader.isLeader,
      ...(opts.databaseUrl ? { nonces: new StoreNonceLedger(ctx, MAX_SKEW_MS) } : {}),
      certificates,
      renewal,
      campaigns,
      verification,
      agentProtocol,
      connectors,
      http01Store: acme.http01Store,
      ...(https ? { https } : {}),
      ...(opts.checkResponses ? { checkResponses: true } : {}),
      ...(trustedProxies.length ? { trustedProxies } : {}),
      pageCache: {
        ...(config.api?.pageCache === false ? { enabled: false } : {}),
        ...(config.api?.lastContactLagSeconds !== undefined
          ? { lagging: { ...DEFAULT_LAGGING, ms: config.api.lastContactLagSeconds * 1000 } }
          : {}),
      },
      ...(config.api?.authFailures
        ? {
            authFailureLimit: {
              max: config.api.authFailures.max,
              windowMs: config.api.authFailures.windowSeconds * 1000,
            },
          }
        : {}),
    });
    await app.listen({ host, port, backlog: LISTEN_BACKLOG });
    await leader.start();
    // Only now, with the hub up: a start that failed before this point leaves no token behind, so the next start
    // creates one (only the start that created it writes it out).
    const preset = env.CERTFLEET_ADMIN_TOKEN;
    let adminTokenFile: string | undefined;
    const adminToken = await ensureAdminToken(ctx.store, preset, async (token) => {
      if (!preset) adminTokenFile = await writeAdminTokenFile(opts.dataDir, token);
    });
    if (adminTokenFile)
      ctx.logger.info({ path: adminTokenFile }, 'admin token created, written to its file (0600)');
    const address = app.server.address();
    const boundPort = typeof address === 'object' && address ? address.port : port;
    const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
    const url = `${tls ? 'https' : 'http'}://${urlHost}:${boundPort}`;
    ctx.logger.info({ url, data_dir: opts.dataDir }, 'hub listening');
    return {
      url,
      port: boundPort,
      ctx,
      app,
      certificates,
      ...(adminToken ? { adminToken } : {}),
      ...(adminTokenFile ? { adminTokenFile } : {}),
      caPem: ctx.internalCa.rootPem,
      caFingerprint: ctx.internalCa.rootFingerprint,
      acme,
      renewal,
      planner,
      campaigns,
      verification,
      connectors,
      ...(backups ? { backups } : {}),
      agentProtocol,
      leadership: leader,
      close: stop,
    };
  } catch (e) {
    // The start's own error is what the user needs; a failing cleanup must not replace it.
    await stop().catch((closeError: unknown) =>
      ctx.logger.warn({ err: closeError }, 'cleanup after a failed start failed'),
    );
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new CertfleetError(
        'CONFIG_INVALID',
        `address ${opts.listen} is already in use`,
        'stop the other process or pass --listen with another port',
      );
    }
    throw e;
  }
}
