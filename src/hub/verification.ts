/**
 * Composition of issue 5's hub side: metrics registry, probe scheduler, alert loop, wired to each other. Built
 * once per hub in src/hub/hub.ts and given to the routes (AppDeps.verification); the probe service and metrics
 * follow deployments through `store.events`, so when this is built does not matter.
 */
import { backupMaxAgeMs, type BackupConfig } from '../backup/backup-schedule.ts';
import { HubMetrics } from '../metrics/hub-metrics.ts';
import { instrumentIssuers } from '../metrics/instrument-issuers.ts';
import type { NotifierRegistry } from '../notify/index.ts';
import { AlertService, alertsHubConfigShape, type AlertsConfig } from './alert-service.ts';
import type { HubContext } from './hub-context.ts';
import { ProbeService, probesHubConfigShape, type ProbesConfig } from './probe-service.ts';

export interface Verification {
  metrics: HubMetrics;
  probes: ProbeService;
  alerts: AlertService;
  /** Starts the probe and alert loops (the leader's job). */
  start(): void;
  /** Stops those loops (leadership lost); `start` resumes them. */
  pause(): Promise<void>;
  stop(): Promise<void>;
}

export function createVerification(
  ctx: HubContext,
  config: { probes?: Partial<ProbesConfig>; alerts?: Partial<AlertsConfig>; backup?: BackupConfig } = {},
  opts: {
    registry?: NotifierRegistry;
    retry?: { attempts: number; baseDelayMs: number; maxDelayMs?: number };
    probeTickMs?: number;
  } = {},
): Verification {
  const metrics = new HubMetrics(ctx);
  instrumentIssuers(ctx, metrics);
  const probes = new ProbeService(ctx, probesHubConfigShape.probes.parse(config.probes ?? {}), {
    metrics,
    ...(opts.probeTickMs ? { tickMs: opts.probeTickMs } : {}),
  });
  const alerts = new AlertService(ctx, alertsHubConfigShape.alerts.parse(config.alerts ?? {}), {
    probes,
    ...(config.backup ? { backupMaxAgeMs: backupMaxAgeMs(config.backup) } : {}),
    ...(opts.registry ? { registry: opts.registry } : {}),
    ...(opts.retry ? { retry: opts.retry } : {}),
  });
  metrics.attach({
    served: () => probes.servedRows(),
    alertChannels: () => alerts.manager.stats().channels,
  });
  return {
    metrics,
    probes,
    alerts,
    start() {
      probes.start();
      alerts.start();
    },
    async pause() {
      await Promise.all([probes.pause(), alerts.pause()]);
    },
    async stop() {
      await probes.stop();
      await alerts.stop();
      metrics.close();
    },
  };
}
