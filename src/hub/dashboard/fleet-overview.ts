/**
 * The fleet overview's read model: every certificate × endpoint (and every certificate without an endpoint) with
 * its attention (attention.ts), sorted, counted, filtered and paged on the server. It is built from three one-query
 * reads (certificates, the fleet read model, endpoints) and kept until the post-commit stream says something
 * changed, so a page costs no query while nothing changes and three after a change, whatever the page.
 */
import type { Clock } from '../../core/clock.ts';
import type { DeploymentState } from '../../core/types.ts';
import type { Store } from '../../store/store.ts';
import { windowEndFor } from '../probe-judgement.ts';
import type { RenewalState } from '../renewal/renewal-state.ts';
import {
  ATTENTION_KINDS,
  attentionOf,
  byAttention,
  type Attention,
  type AttentionKind,
} from './attention.ts';

export interface OverviewRow {
  /** `certificate/endpoint` (or the certificate alone): unique, the tie-break and the row's DOM key. */
  key: string;
  certificate: string;
  issuer: string;
  endpoint?: string;
  endpointKind?: 'agent' | 'connector';
  state?: DeploymentState;
  stateSince?: string;
  serial?: string;
  fingerprint?: string;
  notBefore?: string;
  notAfter?: string;
  lastSeenAt?: string;
  /** The CA's renewal window (ARI) for the current version, when it gave one. */
  ari?: { start: string; end: string };
  attention: Attention;
}

export interface OverviewFilter {
  /** A deployment state, `none` (no deployment yet), or an attention kind. */
  state?: string;
  issuer?: string;
  /** Substring of the endpoint name. */
  endpoint?: string;
  /** Substring of the certificate name or a SAN. */
  name?: string;
}

export interface OverviewPage {
  total: number;
  /** Rows per attention kind and per deployment state over the whole fleet (not the filtered part). */
  counts: {
    attention: Record<AttentionKind, number>;
    states: Record<string, number>;
    certificates: number;
    endpoints: number;
  };
  issuers: string[];
  items: OverviewRow[];
  /** Offset of the next page; absent on the last. */
  next?: string;
  builtAt: string;
}

interface Built {
  rows: OverviewRow[];
  sans: Map<string, string>;
  counts: OverviewPage['counts'];
  issuers: string[];
  builtAt: string;
}

export class FleetOverview {
  private built?: Promise<Built>;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly silentAfterMs: number,
  ) {
    // Any commit may change a row; rebuilding lazily on the next read coalesces bursts (a renew of 10,000 deployments).
    this.unsubscribe = store.events.onAny(() => (this.built = undefined));
  }

  close(): void {
    this.unsubscribe();
  }

  async page(filter: OverviewFilter, offset: number, limit: number): Promise<OverviewPage> {
    const built = await (this.built ??= this.build().catch((e: unknown) => {
      this.built = undefined;
      throw e;
    }));
    const matching = built.rows.filter((r) => matches(r, filter, built.sans));
    const items = matching.slice(offset, offset + limit);
    return {
      total: matching.length,
      counts: built.counts,
      issuers: built.issuers,
      items,
      ...(offset + limit < matching.length ? { next: String(offset + limit) } : {}),
      builtAt: built.builtAt,
    };
  }

  /** The current version's rows of one certificate or endpoint, in attention order (detail views). */
  async rowsOf(by: { certificate?: string; endpoint?: string }): Promise<OverviewRow[]> {
    const built = await (this.built ??= this.build());
    return built.rows.filter(
      (r) =>
        (!by.certificate || r.certificate === by.certificate) && (!by.endpoint || r.endpoint === by.endpoint),
    );
  }

  private async build(): Promise<Built> {
    const now = this.clock.now();
    const [certs, fleet, endpoints] = await Promise.all([
      this.store.certificateRows().then((p) => p.items),
      this.store.fleet().then((p) => p.items),
      this.store.endpointRows().then((p) => p.items),
    ]);
    const certInfo = new Map(certs.map((c) => [c.certificate.name, c]));
    const enrolled = new Map(
      endpoints.map((e) => [e.endpoint.name, e.enrolled || e.lastSeenAt !== undefined]),
    );
    const rows: OverviewRow[] = [];
    const subscribed = new Set<string>();
    const rowOf = (
      name: string,
      extra: Partial<OverviewRow>,
      state?: DeploymentState,
      windowEndedAt?: Date,
      endpointCreatedAt?: string,
    ) => {
      const c = certInfo.get(name)!;
      const v = c.current;
      const rs = c.renewalState as RenewalState;
      const ari = v && rs.ari?.versionId === v.id ? { start: rs.ari.start, end: rs.ari.end } : undefined;
      const silentForMs =
        extra.endpointKind === 'agent' && enrolled.get(extra.endpoint!)
          ? now.getTime() - Date.parse(extra.lastSeenAt ?? endpointCreatedAt!)
          : undefined;
      const attention = attentionOf({
        now,
        ...(state ? { state } : {}),
        ...(windowEndedAt ? { windowEndedAt } : {}),
        ...(silentForMs !== undefined ? { silentForMs } : {}),
        silentAfterMs: this.silentAfterMs,
        renewalFailures: rs.failures?.count ?? 0,
        ...(v ? { notBefore: new Date(v.notBefore), notAfter: new Date(v.notAfter) } : {}),
        ...(ari ? { ariStart: new Date(ari.start) } : {}),
      });
      rows.push({
        key: extra.endpoint ? `${name}/${extra.endpoint}` : name,
        certificate: name,
        issuer: c.certificate.issuer,
        ...extra,
        ...(state ? { state } : {}),
        ...(v
          ? { serial: v.serial, fingerprint: v.fingerprint, notBefore: v.notBefore, notAfter: v.notAfter }
          : {}),
        ...(ari ? { ari } : {}),
        attention,
      });
    };
    for (const f of fleet) {
      subscribed.add(f.certificate.name);
      const d = f.deployment;
      const windowEndedAt =
        d?.state === 'waiting_window' && f.subscription.window
          ? windowEndFor(f.subscription.window, new Date(d.updatedAt))
          : undefined;
      rowOf(
        f.certificate.name,
        {
          endpoint: f.endpoint.name,
          endpointKind: f.endpoint.kind,
          ...(d ? { stateSince: d.updatedAt } : {}),
          ...(f.lastSeenAt ? { lastSeenAt: f.lastSeenAt } : {}),
        },
        d?.state,
        windowEndedAt,
        f.endpoint.createdAt,
      );
    }
    for (const c of certs) if (!subscribed.has(c.certificate.name)) rowOf(c.certificate.name, {});
    rows.sort(byAttention);

    const attention = Object.fromEntries(ATTENTION_KINDS.map((k) => [k, 0])) as Record<AttentionKind, number>;
    const states: Record<string, number> = {};
    for (const r of rows) {
      attention[r.attention.kind]++;
      const s = r.state ?? 'none';
      states[s] = (states[s] ?? 0) + 1;
    }
    return {
      rows,
      sans: new Map(certs.map((c) => [c.certificate.name, c.certificate.sans.join(' ').toLowerCase()])),
      counts: { attention, states, certificates: certs.length, endpoints: endpoints.length },
      issuers: [...new Set(certs.map((c) => c.certificate.issuer))].sort(),
      builtAt: now.toISOString(),
    };
  }
}

function matches(r: OverviewRow, f: OverviewFilter, sans: Map<string, string>): boolean {
  if (f.state) {
    const isKind = (ATTENTION_KINDS as readonly string[]).includes(f.state);
    if (isKind ? r.attention.kind !== f.state : (r.state ?? 'none') !== f.state) return false;
  }
  if (f.issuer && r.issuer !== f.issuer) return false;
  if (f.endpoint && !(r.endpoint ?? '').toLowerCase().includes(f.endpoint.toLowerCase())) return false;
  if (f.name) {
    const q = f.name.toLowerCase();
    if (!r.certificate.toLowerCase().includes(q) && !(sans.get(r.certificate) ?? '').includes(q))
      return false;
  }
  return true;
}
