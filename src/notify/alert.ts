/** The alert model shared by conditions, the alert manager and every channel. */

export const ALERT_KINDS = [
  'renewal_failed',
  'deployment_failed',
  'rolled_back',
  'diverged',
  'window_missed',
  'expiring',
  'agent_silent',
  'dead_mans_switch',
  'backup_failed',
  'backup_stale',
  'test',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export const ALERT_SEVERITIES = ['warning', 'critical'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

export type AlertStatus = 'firing' | 'resolved';

export interface Alert {
  /** Condition identity, stable while the condition lasts, e.g. 'expiring:cert:web' or 'diverged:web:endpoint1'. */
  key: string;
  kind: AlertKind;
  severity: AlertSeverity;
  status: AlertStatus;
  title: string;
  /** Words a person can act on, including the fix. */
  message: string;
  subject: { certificate?: string; endpoint?: string };
  /** ISO 8601 time the condition was evaluated. */
  at: string;
  /**
   * Escalation level within one condition (higher = more urgent). Lets a condition escalate without changing
   * severity, e.g. expiring critical → critical "imminent". Defaults to the severity's rank.
   */
  level?: number;
  details?: Record<string, unknown>;
  /**
   * When this firing began (the manager's first notification of it): with `key`, the identity of one firing, so an
   * acknowledgement holds for that firing only. Absent on alerts computed on demand (the alert loop off).
   */
  since?: string;
}

/** How urgent an alert is; a rise between two evaluations is an escalation and re-notifies. */
export function urgencyOf(alert: Pick<Alert, 'severity' | 'level'>): number {
  return alert.level ?? (alert.severity === 'critical' ? 2 : 1);
}

/** One line naming status and severity, used as an email subject and a chat headline. */
export function headline(alert: Alert): string {
  if (alert.kind === 'test') return `TEST: ${alert.title}`;
  if (alert.status === 'resolved') return `RESOLVED: ${alert.title}`;
  return `FIRING ${alert.severity}: ${alert.title}`;
}
