/**
 * Which alerts should be firing now, as pure functions of plain inputs. The hub feeds them from the store and
 * hands the union to the AlertManager, which turns changes into notifications.
 */
import type { DeploymentState } from '../core/types.ts';
import type { Alert, AlertKind, AlertSeverity } from './alert.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "3 days", "5 hours", "12 minutes": coarse on purpose, titles are read by people. */
export function humanDuration(ms: number): string {
  const a = Math.abs(ms);
  const unit = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  if (a >= 2 * DAY) return unit(Math.floor(a / DAY), 'day');
  if (a >= 2 * HOUR) return unit(Math.floor(a / HOUR), 'hour');
  if (a >= MINUTE) return unit(Math.floor(a / MINUTE), 'minute');
  return unit(Math.floor(a / 1000), 'second');
}

function make(
  kind: AlertKind,
  key: string,
  severity: AlertSeverity,
  now: Date,
  title: string,
  message: string,
  subject: Alert['subject'],
  extra: { level?: number; details?: Record<string, unknown> } = {},
): Alert {
  return { key, kind, severity, status: 'firing', title, message, subject, at: now.toISOString(), ...extra };
}

// ---------------------------------------------------------------------------------------------------------
// Expiry: thresholds scale with lifetime, so a 90-day and a 6-day certificate both warn in time to act.

export const EXPIRY_STAGES = [
  // Checked most urgent first; `fraction` is the share of the lifetime still left.
  { stage: 'expired', fraction: 0, severity: 'critical', level: 4 },
  { stage: 'imminent', fraction: 1 / 15, severity: 'critical', level: 3 },
  { stage: 'critical', fraction: 1 / 6, severity: 'critical', level: 2 },
  { stage: 'warning', fraction: 1 / 3, severity: 'warning', level: 1 },
] as const;

export function expiryAlerts(
  certs: Array<{ name: string; notBefore: Date; notAfter: Date }>,
  now: Date,
): Alert[] {
  const out: Alert[] = [];
  for (const c of certs) {
    const lifetime = c.notAfter.getTime() - c.notBefore.getTime();
    if (!(lifetime > 0)) continue;
    const left = c.notAfter.getTime() - now.getTime();
    const hit = EXPIRY_STAGES.find((s) => left <= lifetime * s.fraction);
    if (!hit) continue;
    const expired = hit.stage === 'expired';
    const title = expired
      ? `certificate ${c.name} expired ${humanDuration(left)} ago`
      : `certificate ${c.name} expires in ${humanDuration(left)}${hit.stage === 'imminent' ? ' (imminent)' : ''}`;
    const message = expired
      ? `Certificate ${c.name} expired at ${c.notAfter.toISOString()}; clients connecting to endpoints that still ` +
        `serve it fail. Renew it now (certfleet renew ${c.name}) and check that the new version is deployed and ` +
        `verified on every endpoint (certfleet status ${c.name}).`
      : `Certificate ${c.name} expires at ${c.notAfter.toISOString()} (${humanDuration(left)} left of a ` +
        `${humanDuration(lifetime)} lifetime) and no newer version has replaced it. Look at its renewal ` +
        `failures and stuck deployments (certfleet status ${c.name}), fix the cause, then renew ` +
        `(certfleet renew ${c.name}).`;
    out.push(
      make(
        'expiring',
        `expiring:cert:${c.name}`,
        hit.severity,
        now,
        title,
        message,
        { certificate: c.name },
        {
          level: hit.level,
          details: {
            stage: hit.stage,
            notAfter: c.notAfter.toISOString(),
            secondsLeft: Math.round(left / 1000),
          },
        },
      ),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Agent endpoints that have not checked in for `silentAfterMs`. Connector endpoints are pushed to and never
 * check in, so they are skipped. An agent never seen counts from `createdAt` when given, else is skipped (it
 * may simply not be enrolled yet).
 */
export function agentSilentAlerts(
  endpoints: Array<{ name: string; kind: string; lastSeenAt?: Date; createdAt?: Date }>,
  now: Date,
  silentAfterMs: number,
): Alert[] {
  const out: Alert[] = [];
  for (const e of endpoints) {
    if (e.kind !== 'agent') continue;
    const since = e.lastSeenAt ?? e.createdAt;
    if (!since) continue;
    const silent = now.getTime() - since.getTime();
    if (silent < silentAfterMs) continue;
    const title = e.lastSeenAt
      ? `agent on endpoint ${e.name} silent for ${humanDuration(silent)}`
      : `agent on endpoint ${e.name} has never checked in`;
    const message =
      `The certfleet agent on endpoint ${e.name} ${e.lastSeenAt ? `last checked in at ${e.lastSeenAt.toISOString()}` : 'has not checked in since the endpoint was created'}, ` +
      `so new certificates cannot reach it. On that host check that the agent runs ` +
      `(systemctl status certfleet-agent) and can reach the hub (DNS, firewall, hub CA pin); re-enroll it if its ` +
      `credentials were lost.`;
    out.push(
      make(
        'agent_silent',
        `agent_silent:${e.name}`,
        'warning',
        now,
        title,
        message,
        { endpoint: e.name },
        {
          details: { lastSeenAt: e.lastSeenAt?.toISOString(), silentSeconds: Math.round(silent / 1000) },
        },
      ),
    );
  }
  return out;
}

/**
 * Fires when the planner has not run for `maxAgeMs`. Counting starts no earlier than the hub's start, so a
 * restarted hub gets one full period of grace before it can fire.
 */
export function deadMansSwitchAlert(
  lastPlannerRunAt: Date | undefined,
  now: Date,
  maxAgeMs: number,
  hubStartedAt: Date,
): Alert | undefined {
  const reference = Math.max(lastPlannerRunAt?.getTime() ?? -Infinity, hubStartedAt.getTime());
  const age = now.getTime() - reference;
  if (age < maxAgeMs) return undefined;
  const last = lastPlannerRunAt ? lastPlannerRunAt.toISOString() : 'never';
  return make(
    'dead_mans_switch',
    'dead_mans_switch:planner',
    'critical',
    now,
    `planner has not run for ${humanDuration(age)}`,
    `The renewal planner last ran ${last === 'never' ? 'never' : `at ${last}`}; until it runs, no certificate is ` +
      `renewed. Check the hub logs for a stuck or crashing planner, the leader lease and the database ` +
      `connection (certfleet status), and restart the hub if it does not recover.`,
    {},
    {
      details: {
        lastPlannerRunAt: lastPlannerRunAt?.toISOString(),
        hubStartedAt: hubStartedAt.toISOString(),
      },
    },
  );
}

/**
 * The dead man's switch for backups: fires when the last scheduled backup failed to write or verify, or when no
 * backup has been verified for `maxAgeMs` (counted from the hub's start when there never was one).
 */
export function backupAlerts(
  last: { verifiedAt?: Date; failure?: { at: Date; error: string } },
  now: Date,
  maxAgeMs: number,
  hubStartedAt: Date,
): Alert[] {
  const out: Alert[] = [];
  const verified = last.verifiedAt?.toISOString() ?? 'never';
  if (last.failure && last.failure.at.getTime() > (last.verifiedAt?.getTime() ?? -Infinity)) {
    out.push(
      make(
        'backup_failed',
        'backup_failed',
        'critical',
        now,
        'the last scheduled backup failed',
        `The scheduled backup at ${last.failure.at.toISOString()} failed or did not verify: ` +
          `${last.failure.error.slice(0, 500)}. The last verified backup is from ${verified}. Fix the cause (disk ` +
          `space, the backup directory, the recipients in backup: of the hub config), then check the next run ` +
          `with \`certfleet backup verify FILE --identity ID\`.`,
        {},
        {
          details: {
            failedAt: last.failure.at.toISOString(),
            lastVerifiedAt: last.verifiedAt?.toISOString(),
          },
        },
      ),
    );
  }
  const age = now.getTime() - Math.max(last.verifiedAt?.getTime() ?? -Infinity, hubStartedAt.getTime());
  if (age >= maxAgeMs) {
    out.push(
      make(
        'backup_stale',
        'backup_stale',
        'critical',
        now,
        `no verified backup for ${humanDuration(age)}`,
        `The last verified backup is from ${verified}; if the hub's machine died now, what changed since would be ` +
          `lost. Check the hub log for backup errors and the backup: section of the hub config, or take one by ` +
          `hand: certfleet backup create --out FILE --recipient AGE_PUBLIC_KEY.`,
        {},
        {
          details: {
            lastVerifiedAt: last.verifiedAt?.toISOString(),
            hubStartedAt: hubStartedAt.toISOString(),
          },
        },
      ),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

export function deploymentAlerts(
  deployments: Array<{
    certificate: string;
    endpoint: string;
    state: DeploymentState | string;
    reason?: string;
    windowEndsAt?: Date;
    updatedAt: Date;
  }>,
  now: Date,
): Alert[] {
  const out: Alert[] = [];
  for (const d of deployments) {
    const subject = { certificate: d.certificate, endpoint: d.endpoint };
    const because = d.reason ? ` Reason: ${d.reason.slice(0, 500)}.` : '';
    const details = { state: d.state, reason: d.reason, updatedAt: d.updatedAt.toISOString() };
    const key = (kind: AlertKind) => `${kind}:${d.certificate}:${d.endpoint}`;
    const pair = `${d.certificate} on ${d.endpoint}`;
    if (d.state === 'failed') {
      out.push(
        make(
          'deployment_failed',
          key('deployment_failed'),
          'critical',
          now,
          `deployment of ${pair} failed`,
          `Deploying certificate ${d.certificate} to endpoint ${d.endpoint} failed at ${d.updatedAt.toISOString()}.` +
            `${because} Fix the cause on the endpoint (paths, permissions, config test, reload command), then ` +
            `retry the deployment (certfleet deploy ${d.certificate} --endpoint ${d.endpoint}).`,
          subject,
          { details },
        ),
      );
    } else if (d.state === 'rolled_back') {
      out.push(
        make(
          'rolled_back',
          key('rolled_back'),
          'warning',
          now,
          `deployment of ${pair} was rolled back`,
          `The new version of ${d.certificate} failed on ${d.endpoint} and the previous version was restored; the ` +
            `endpoint still serves the old certificate.${because} Fix the cause, then retry the deployment ` +
            `(certfleet deploy ${d.certificate} --endpoint ${d.endpoint}) before the old one expires.`,
          subject,
          { details },
        ),
      );
    } else if (d.state === 'diverged') {
      out.push(
        make(
          'diverged',
          key('diverged'),
          'critical',
          now,
          `endpoint ${d.endpoint} serves something other than ${d.certificate}`,
          `A probe found endpoint ${d.endpoint} serving a certificate other than the deployed version of ` +
            `${d.certificate}.${because} Someone or something may have replaced the files or the server config; ` +
            `check the endpoint, then redeploy (certfleet deploy ${d.certificate} --endpoint ${d.endpoint}).`,
          subject,
          { details },
        ),
      );
    } else if (d.state === 'waiting_window' && d.windowEndsAt && d.windowEndsAt.getTime() <= now.getTime()) {
      out.push(
        make(
          'window_missed',
          key('window_missed'),
          'warning',
          now,
          `${pair} missed its change window`,
          `Certificate ${d.certificate} is installed on ${d.endpoint} but was not reloaded before its change window ` +
            `closed at ${d.windowEndsAt.toISOString()}. Check the agent on ${d.endpoint} and its reload command; the ` +
            `reload happens in the next window, or widen the window if the certificate expires first.`,
          subject,
          { details: { ...details, windowEndsAt: d.windowEndsAt.toISOString() } },
        ),
      );
    }
  }
  return out;
}

/** Certificates whose renewal keeps failing; critical once the planner marks the renewal urgent. */
export function renewalFailureAlerts(
  certs: Array<{ name: string; failures: number; lastError?: string; urgent: boolean }>,
  now: Date = new Date(),
): Alert[] {
  return certs
    .filter((c) => c.failures > 0)
    .map((c) =>
      make(
        'renewal_failed',
        `renewal_failed:cert:${c.name}`,
        c.urgent ? 'critical' : 'warning',
        now,
        `renewal of certificate ${c.name} failed ${c.failures} time${c.failures === 1 ? '' : 's'}`,
        `Renewing certificate ${c.name} failed ${c.failures} time${c.failures === 1 ? '' : 's'} in a row` +
          `${c.lastError ? `; last error: ${c.lastError.slice(0, 500)}` : ''}. ` +
          `${c.urgent ? 'It is close to expiry: act now. ' : 'Retries continue with backoff. '}` +
          `Check the issuer (ACME account, rate limits, DNS/HTTP challenge reachability) in the events ` +
          `(certfleet status ${c.name}), fix it and renew (certfleet renew ${c.name}).`,
        { certificate: c.name },
        { details: { failures: c.failures, lastError: c.lastError?.slice(0, 500), urgent: c.urgent } },
      ),
    );
}
