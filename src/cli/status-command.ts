import type { Command } from 'commander';
import { clientFor, globalFlags } from './context.ts';
import { printJson, relativeTime, table } from './output.ts';

export interface StatusRow {
  subscriptionId: string;
  certificate: string | null;
  endpoint: string | null;
  endpointKind: string | null;
  version: { id: string; serial: string; fingerprint: string; notAfter: string } | null;
  /** `summary`: why it is in this state, in one line (hubs before it send only `reason`). */
  deployment: { state: string; reason: string | null; summary?: string | null; updatedAt: string } | null;
  lastSeenAt: string | null;
}

/** One row of `GET /api/v1/probes/served` (src/hub/probe-service.ts ServedSummaryRow). */
export interface ServedRow {
  subscriptionId: string;
  fingerprint: string | null;
  matchesCurrent: boolean;
  probedAt: string;
  error: { kind: string; message: string } | null;
  /** Where it was seen: `hub` or `agent:<endpoint>` (hubs before agent probes send none). */
  source?: string;
}

/**
 * `ab12cd34ef56 current (2m ago)`: what a probe saw served, whether it is the current version, and when; `via
 * agent` when the endpoint's agent took that probe.
 */
export function servedCell(s: ServedRow | undefined): string {
  if (!s) return '-';
  const what = s.fingerprint
    ? `${short(s.fingerprint)} ${s.matchesCurrent ? 'current' : 'OTHER'}`
    : (s.error?.kind ?? 'no cert');
  const via = s.source && s.source !== 'hub' ? ` via agent` : '';
  return `${what}${via} (${relativeTime(s.probedAt)})`;
}

/** `ab12cd34…` of a SHA-256 fingerprint: enough to tell versions apart in a table. */
const short = (fp: string | undefined) => (fp ? `${fp.slice(0, 12)}` : undefined);

/** `rolled_back (reload exited 3: nginx: [emerg] …)`: the state with why, so a failure explains itself. */
export function stateCell(s: StatusRow): string {
  const state = s.deployment?.state ?? (s.version ? 'pending' : 'no version');
  const why = s.deployment?.summary ?? s.deployment?.reason;
  return why ? `${state} (${why})` : state;
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status [certificate]')
    .description(
      'certificate × endpoint: version, deployment state and age, what probes saw served, agent last contact',
    )
    .action(async (certificate: string | undefined, _opts, cmd: Command) => {
      const client = clientFor(cmd);
      const [all, served] = await Promise.all([
        client.getAll<StatusRow>(
          `/api/v1/status${certificate ? `?certificate=${encodeURIComponent(certificate)}` : ''}`,
        ),
        // a hub without probes (older version) simply has no served column data
        client.get<ServedRow[]>('/api/v1/probes/served').catch(() => [] as ServedRow[]),
      ]);
      const rows = certificate ? all.filter((r) => r.certificate === certificate) : all;
      const servedBySub = new Map(served.map((s) => [s.subscriptionId, s]));
      if (globalFlags(cmd).json)
        return printJson(rows.map((r) => ({ ...r, served: servedBySub.get(r.subscriptionId) ?? null })));
      process.stdout.write(
        `${table(
          ['CERTIFICATE', 'ENDPOINT', 'STATE', 'SINCE', 'VERSION', 'SERVED', 'SEEN'],
          rows.map((s) => [
            s.certificate,
            s.endpoint,
            stateCell(s),
            relativeTime(s.deployment?.updatedAt),
            s.version ? `${short(s.version.fingerprint)} #${s.version.serial.slice(0, 8)}` : '-',
            servedCell(servedBySub.get(s.subscriptionId)),
            relativeTime(s.lastSeenAt), // agents: their last poll; connectors: their last contact
          ]),
        )}\n`,
      );
    });
}
