/**
 * The fleet overview's read model: every certificate × endpoint (and every certificate without an endpoint) with
 * its attention (attention.ts), sorted, counted, filtered and paged on the server. It is built from three one-query
 * reads (certificates, the fleet read model, endpoints) and kept: a deployment transition (the bulk of a live
 * fleet's commits: every agent report) updates its row in place; any other commit, or age past `maxAgeMs` (silent
 * agents and lifetime fractions move with the clock), drops it and the next read rebuilds it. So a page costs no
 * query while nothing but deployments changes, and three after any other change, whatever the page.
 */
import type { Clock } from '../../core/clock.ts';
import type { ChangeWindow, Deployment, DeploymentState } from '../../core/types.ts';
import type { Store } from '../../store/store.ts';
import { windowEndFor } from '../probe-judgement.ts';
import type { RenewalState } from '../renewal/renewal-state.ts';
import {
  ATTENTION_KINDS,
  attentionOf,
  byAttention,
  type Attention,
  type AttentionInput,
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

/** What a row's attention is computed from, kept so a deployment transition recomputes it in place. */
interface RowSource {
  row: OverviewRow;
  input: AttentionInput;
  versionId?: string;
  window?: ChangeWindow;
}

interface Built {
  rows: OverviewRow[];
  bySubscription: Map<string, RowSource>;
  /** Rows changed in place since the last sort and count. */
  stale: boolean;
  sans: Map<string, string>;
  counts: OverviewPage['counts'];
  issuers: string[];
  builtAt: string;
}

export class FleetOverview {
  private built?: Promise<Built>;
  private current?: Built;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly silentAfterMs: number,
    private readonly maxAgeMs = 60_000,
  ) {
    // Any commit may change a row; rebuilding lazily on the next read coalesces bursts (a renew of 10,000 deployments).
    this.unsubscribe = store.events.onAny((e) => {
      if (e.kind === 'revision.bumped') return; // comes with the change that bumped it
      if (
        e.kind === 'deployment.transitioned' &&
        this.current &&
        this.applyTransition(this.current, e.deployment)
      )
        return;
      this.built = undefined;
      this.current = undefined;
    });
  }

  /** Updates one row for a transition of its current version's deployment; false when the row is unknown. */
  private applyTransition(built: Built, d: Deployment): boolean {
    const src = built.bySubscription.get(d.subscriptionId);
    if (!src || src.versionId !== d.versionId) return false;
    const windowEndedAt =
      d.state === 'waiting_window' && src.window
        ? windowEndFor(src.window, new Date(d.updatedAt))
        : undefined;
    src.input = { ...src.input, state: d.state, now: this.clock.now() };
    if (windowEndedAt) src.input.windowEndedAt = windowEndedAt;
    else delete src.input.windowEndedAt;
    src.row.state = d.state;
    src.row.stateSince = d.updatedAt;
    src.row.attention = attentionOf(src.input);
    built.stale = true;
    return true;
  }

  private async read(): Promise<Built> {
    if (this.current && this.clock.now().getTime() - Date.parse(this.current.builtAt) > this.maxAgeMs) {
      this.built = undefined;
      this.current = undefined;
    }
    const built = await (this.built ??= this.build().then(
      (b) => (this.current = b),
      (e: unknown) => {
        this.built = undefined;
        throw e;
      },
    ));
    if (built.stale) {
      built.rows.sort(byAttention);
      built.counts = countsOf(built.rows, built.counts.certificates, built.counts.endpoints);
      built.stale = false;
    }
    return built;
  }

  close(): void {
    this.unsubscribe();
  }

  async page(filter: OverviewFilter, offset: number, limit: number): Promise<OverviewPage> {
    const built = await this.read();
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
    const built = await this.read();
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
    const bySubscription = new Map<string, RowSource>();
    const subscribed = new Set<string>();
    const rowOf = (
      name: string,
      extra: Partial<OverviewRow>,
      state?: DeploymentState,
      windowEndedAt?: Date,
      endpointCreatedAt?: string,
    ): RowSource => {
      const c = certInfo.get(name)!;
      const v = c.current;
      const rs = c.renewalState as RenewalState;
      const ari = v && rs.ari?.versionId === v.id ? { start: rs.ari.start, end: rs.ari.end } : undefined;
      const silentForMs =
        extra.endpointKind === 'agent' && enrolled.get(extra.endpoint!)
          ? now.getTime() - Date.parse(extra.lastSeenAt ?? endpointCreatedAt!)
          : undefined;
      const input: AttentionInput = {
        now,
        ...(state ? { state } : {}),
        ...(windowEndedAt ? { windowEndedAt } : {}),
        ...(silentForMs !== undefined ? { silentForMs } : {}),
        silentAfterMs: this.silentAfterMs,
        renewalFailures: rs.failures?.count ?? 0,
        ...(v ? { notBefore: new Date(v.notBefore), notAfter: new Date(v.notAfter) } : {}),
        ...(ari ? { ariStart: new Date(ari.start) } : {}),
      };
      const attention = attentionOf(input);
      const row: OverviewRow = {
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
      };
      rows.push(row);
      return { row, input, ...(v ? { versionId: v.id } : {}) };
    };
    for (const f of fleet) {
      subscribed.add(f.certificate.name);
      const d = f.deployment;
      const windowEndedAt =
        d?.state === 'waiting_window' && f.subscription.window
          ? windowEndFor(f.subscription.window, new Date(d.updatedAt))
          : undefined;
      const src = rowOf(
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
      bySubscription.set(f.subscription.id, {
        ...src,
        ...(f.subscription.window ? { window: f.subscription.window } : {}),
      });
    }
    for (const c of certs) if (!subscribed.has(c.certificate.name)) rowOf(c.certificate.name, {});
    rows.sort(byAttention);
    return {
      rows,
      bySubscription,
      stale: false,
      sans: new Map(certs.map((c) => [c.certificate.name, c.certificate.sans.join(' ').toLowerCase()])),
      counts: countsOf(rows, certs.length, endpoints.length),
      issuers: [...new Set(certs.map((c) => c.certificate.issuer))].sort(),
      builtAt: now.toISOString(),
    };
  }
}

function countsOf(rows: OverviewRow[], certificates: number, endpoints: number): OverviewPage['counts'] {
  const attention = Object.fromEntries(ATTENTION_KINDS.map((k) => [k, 0])) as Record<AttentionKind, number>;
  const states: Record<string, number> = {};
  for (const r of rows) {
    attention[r.attention.kind]++;
    const s = r.state ?? 'none';
    states[s] = (states[s] ?? 0) + 1;
  }
  return { attention, states, certificates, endpoints };
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
