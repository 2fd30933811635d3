/**
 * The fleet overview's read model: every certificate × endpoint (and every certificate without an endpoint) with
 * its attention (attention.ts), sorted, counted, filtered and paged on the server. Built once at hub start, in the
 * background (`start`), from three one-query reads (certificates, the fleet read model, endpoints), then kept
 * current from the store's post-commit events:
 * - a deployment transition (every agent report) updates its row in place, at once;
 * - a change of a certificate, its versions, subscriptions or renewal state re-reads that certificate's rows (two
 *   queries), and an endpoint change the rows of the certificates it serves, on the next read (which waits for it,
 *   so a page never shows less than what was committed before it was asked for);
 * - many changes at once (> `MAX_INCREMENTAL` certificates), or an event kind this model does not know, rebuild it;
 * - age past `maxAgeMs` (silent agents and lifetime fractions move with the clock) re-ages it in the background
 *   while reads keep the current one: every row's attention again from its kept inputs at the new time, with the
 *   endpoints' last contact re-read (agent contacts emit no event): one read of the endpoints, not a full build
 *   (which at 10,000 rows costs seconds of CPU, every minute while anyone looks).
 * So a page costs no query while nothing changes and a few after a change, and no visitor waits for a full build
 * except before the first one has finished.
 */
import type { Clock } from '../../core/clock.ts';
import type { ChangeWindow, Deployment, DeploymentState } from '../../core/types.ts';
import type { CertificateRow, FleetRow, Store } from '../../store/store.ts';
import { READS } from '../../store/fleet-queries.ts';
import type { StoreEvent } from '../../store/store-events.ts';
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
  /** Every row's source (those without a subscription too), for re-ageing. */
  sources: RowSource[];
  /** Rows changed in place since the last sort and count. */
  stale: boolean;
  certs: Map<string, CertificateRow>;
  /** Certificate id → name (subscription events name certificates by id). */
  certNames: Map<string, string>;
  /** Endpoint name → enrolled or seen (an unenrolled agent endpoint is not "silent"). */
  enrolled: Map<string, boolean>;
  endpoints: number;
  sans: Map<string, string>;
  counts: OverviewPage['counts'];
  issuers: string[];
  builtAt: string;
}

/** A committed change the model has not applied yet. */
type Change =
  | { kind: 'transition'; deployment: Deployment }
  | { kind: 'certificate'; name?: string; id?: string }
  | { kind: 'endpoint'; id: string; name: string; change: 'created' | 'updated' | 'deleted' | 'enrolled' }
  | { kind: 'all' };

/**
 * What the model's rows are made of, for pages drawn from it (write-generation.ts): the tables of its reads
 * (certificates with versions, the fleet with its probe results, endpoints), but NOT `endpoints.last_seen_at`: agents' contacts emit no
 * event and reach the rows only when the model is re-aged (every `maxAgeMs`) or a certificate's rows are re-read,
 * so a page re-rendered after a touch would show the same rows. A page's own `maxAgeMs` bounds how long it shows a
 * re-aged model late.
 */
export const OVERVIEW_READS = [...READS.subscriptionRows, 'probe_results'] as const;

/** Above this many certificates to refresh at once, one full build is cheaper than per-certificate reads. */
const MAX_INCREMENTAL = 100;

/**
 * Changes held for the next read at most. Nothing applies them until someone reads the overview, so with nobody
 * looking they would pile up for as long as the hub runs: every agent report of every renewal (both hubs' on
 * PostgreSQL). Past this many, one pending full build stands for all of them and later ones.
 */
const MAX_PENDING = 10_000;

export class FleetOverview {
  private current?: Built;
  /** A full build in flight. */
  private building?: Promise<Built>;
  /** An incremental refresh in flight. */
  private refreshing?: Promise<void>;
  /** A re-ageing in flight. */
  private reageing?: Promise<void>;
  /** Committed changes `current` does not show yet, in commit order. */
  private pending: Change[] = [];
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly silentAfterMs: number,
    private readonly maxAgeMs = 60_000,
    private readonly maxPending = MAX_PENDING,
  ) {
    this.unsubscribe = store.events.onAny((e) => this.note(e));
  }

  /** Builds the model in the background (hub start), so the first visitor does not wait for it. */
  start(onError: (e: unknown) => void): void {
    this.rebuild().catch(onError);
  }

  /** Committed changes held for the next read (at most `maxPending`; a pending full build stands for the rest). */
  get pendingChanges(): number {
    return this.pending.length;
  }

  private note(e: StoreEvent): void {
    // a full build is pending: it reads after this commit, nothing more to remember
    if (this.pending.at(-1)?.kind === 'all') return;
    if (this.pending.length >= this.maxPending) {
      this.pending = [{ kind: 'all' }];
      return;
    }
    switch (e.kind) {
      case 'revision.bumped': // comes with the change that bumped it
      case 'redeploy.requested': // its transitions follow
      case 'probe.recorded': // rows show no probe results (the detail views read them)
        return;
      case 'deployment.transitioned':
        // in place at once, unless a read is in flight whose result could predate it: then replayed after
        // (a transition of an older version's deployment is no row's: nothing shown changes)
        if (this.current && !this.building && !this.refreshing && this.pending.length === 0)
          return void this.applyTransition(this.current, e.deployment);
        this.pending.push({ kind: 'transition', deployment: e.deployment });
        return;
      case 'version.added':
      case 'certificate.changed':
      case 'renewal.failed':
        this.pending.push({ kind: 'certificate', name: e.certificate.name, id: e.certificate.id });
        return;
      case 'subscription.changed':
        this.pending.push({ kind: 'certificate', id: e.certificateId });
        return;
      case 'endpoint.changed':
        this.pending.push({ kind: 'endpoint', id: e.endpoint.id, name: e.endpoint.name, change: e.change });
        return;
      default:
        this.pending.push({ kind: 'all' });
    }
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

  /** A full build; what was pending when it starts is covered by its reads, what comes later stays pending. */
  private rebuild(): Promise<Built> {
    if (this.building) return this.building;
    this.pending = [];
    const building = this.build().then((b) => (this.current = b));
    this.building = building;
    const clear = () => {
      if (this.building === building) this.building = undefined;
    };
    building.then(clear, clear);
    return building;
  }

  private async read(): Promise<Built> {
    // a bounded number of rounds: under a steady stream of commits a read still answers
    for (let round = 0; round < 4; round++) {
      if (this.building && (!this.current || this.pending.length > 0)) await this.building;
      else if (!this.current) await this.rebuild();
      else if (this.pending.length > 0)
        await (this.refreshing ??= this.refresh().finally(() => (this.refreshing = undefined)));
      else break;
    }
    const built = this.current!;
    if (this.clock.now().getTime() - Date.parse(built.builtAt) > this.maxAgeMs && !this.building)
      this.reageing ??= this.reage(built) // a failure: the next read retries; this one keeps the current rows
        .catch(() => {})
        .finally(() => (this.reageing = undefined));
    if (built.stale) {
      built.rows.sort(byAttention);
      built.counts = countsOf(built.rows, built.certs.size, built.endpoints);
      built.stale = false;
    }
    return built;
  }

  /** Applies the pending changes to `current`: certificates re-read, transitions replayed, in commit order. */
  private async refresh(): Promise<void> {
    const changes = this.pending.splice(0);
    const built = this.current!;
    const names = new Set<string>();
    const endpointIds = new Set<string>();
    for (const c of changes) {
      if (c.kind === 'all') return void (await this.rebuild());
      if (c.kind === 'certificate') {
        const name = c.name ?? built.certNames.get(c.id!);
        if (!name) return void (await this.rebuild()); // a certificate this model never saw
        names.add(name);
      } else if (c.kind === 'endpoint') {
        endpointIds.add(c.id);
        for (const r of built.rows) if (r.endpoint === c.name) names.add(r.certificate);
        if (c.change === 'created') built.endpoints++;
        if (c.change === 'deleted') built.endpoints--;
        if (c.change === 'deleted') built.enrolled.delete(c.name);
        else if (c.change === 'enrolled') built.enrolled.set(c.name, true);
        else if (!built.enrolled.has(c.name)) built.enrolled.set(c.name, false);
      }
    }
    for (const id of endpointIds)
      for (const f of (await this.store.fleet({ endpointId: id })).items) names.add(f.certificate.name);
    if (names.size > MAX_INCREMENTAL) return void (await this.rebuild());
    if (names.size > 0) {
      const certs = (await this.store.certificateRows(undefined, { names: [...names] })).items;
      const fleets = await Promise.all(
        certs.map((c) => this.store.fleet({ certificateId: c.certificate.id }).then((p) => p.items)),
      );
      if (this.current !== built) return; // a full build replaced it meanwhile (and read after these changes)
      built.rows = built.rows.filter((r) => !names.has(r.certificate));
      for (const [id, src] of built.bySubscription)
        if (names.has(src.row.certificate)) built.bySubscription.delete(id);
      built.sources = built.sources.filter((src) => !names.has(src.row.certificate));
      for (const name of names) {
        const gone = built.certs.get(name);
        if (gone) built.certNames.delete(gone.certificate.id);
        built.certs.delete(name);
        built.sans.delete(name);
      }
      certs.forEach((c, i) => this.addCertificate(built, c, fleets[i], this.clock.now()));
      built.issuers = [...new Set([...built.certs.values()].map((c) => c.certificate.issuer))].sort();
    }
    // replayed after the re-reads, in order: the last transition of a deployment wins, as it did in the store
    for (const c of changes) if (c.kind === 'transition') this.applyTransition(built, c.deployment);
    built.stale = true;
  }

  close(): void {
    this.unsubscribe();
  }

  /** The clock moved on: attention again at `now` from each row's inputs and the endpoints' last contact. */
  private async reage(built: Built): Promise<void> {
    const now = this.clock.now();
    const endpoints = (await this.store.endpointRows()).items;
    if (this.current !== built) return; // a full build replaced it meanwhile
    const byName = new Map(endpoints.map((e) => [e.endpoint.name, e]));
    built.enrolled = new Map(
      endpoints.map((e) => [e.endpoint.name, e.enrolled || e.lastSeenAt !== undefined]),
    );
    for (const src of built.sources) {
      const { row } = src;
      const e = row.endpoint === undefined ? undefined : byName.get(row.endpoint);
      src.input = { ...src.input, now };
      if (e) {
        if (e.lastSeenAt) row.lastSeenAt = e.lastSeenAt;
        const silentForMs = silenceOf(row, built, now, e.endpoint.createdAt);
        if (silentForMs !== undefined) src.input.silentForMs = silentForMs;
        else delete src.input.silentForMs;
      }
      row.attention = attentionOf(src.input);
    }
    built.builtAt = now.toISOString();
    built.stale = true;
  }

  async page(filter: OverviewFilter, offset: number, limit: number): Promise<OverviewPage> {
    const built = await this.read();
    // the unfiltered overview (the first page every visitor sees) needs no copy of every row
    const filtered = Object.values(filter).some((v) => v !== undefined && v !== '');
    const matching = filtered ? built.rows.filter((r) => matches(r, filter, built.sans)) : built.rows;
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
    const built: Built = {
      rows: [],
      bySubscription: new Map(),
      sources: [],
      stale: true,
      certs: new Map(),
      certNames: new Map(),
      enrolled: new Map(endpoints.map((e) => [e.endpoint.name, e.enrolled || e.lastSeenAt !== undefined])),
      endpoints: endpoints.length,
      sans: new Map(),
      counts: countsOf([], 0, 0),
      issuers: [...new Set(certs.map((c) => c.certificate.issuer))].sort(),
      builtAt: now.toISOString(),
    };
    const fleetOf = new Map<string, FleetRow[]>();
    for (const f of fleet) {
      const list = fleetOf.get(f.certificate.name);
      if (list) list.push(f);
      else fleetOf.set(f.certificate.name, [f]);
    }
    for (const c of certs) this.addCertificate(built, c, fleetOf.get(c.certificate.name) ?? [], now);
    built.rows.sort(byAttention);
    built.counts = countsOf(built.rows, built.certs.size, built.endpoints);
    built.stale = false;
    return built;
  }

  /** The rows of one certificate: one per subscription, or one alone when it has none. */
  private addCertificate(built: Built, c: CertificateRow, fleet: readonly FleetRow[], now: Date): void {
    const name = c.certificate.name;
    built.certs.set(name, c);
    built.certNames.set(c.certificate.id, name);
    built.sans.set(name, c.certificate.sans.join(' ').toLowerCase());
    const v = c.current;
    const rs = c.renewalState as RenewalState;
    const ari = v && rs.ari?.versionId === v.id ? { start: rs.ari.start, end: rs.ari.end } : undefined;
    const rowOf = (
      extra: Partial<OverviewRow>,
      state?: DeploymentState,
      windowEndedAt?: Date,
      endpointCreatedAt?: string,
    ): RowSource => {
      const silentForMs = silenceOf(extra, built, now, endpointCreatedAt);
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
        attention: attentionOf(input),
      };
      built.rows.push(row);
      const src: RowSource = { row, input, ...(v ? { versionId: v.id } : {}) };
      built.sources.push(src);
      return src;
    };
    for (const f of fleet) {
      const d = f.deployment;
      const windowEndedAt =
        d?.state === 'waiting_window' && f.subscription.window
          ? windowEndFor(f.subscription.window, new Date(d.updatedAt))
          : undefined;
      const src = rowOf(
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
      if (f.subscription.window) src.window = f.subscription.window;
      built.bySubscription.set(f.subscription.id, src);
    }
    if (fleet.length === 0) rowOf({});
  }
}

/** How long an enrolled agent endpoint has been silent at `now`; undefined for connectors and unenrolled agents. */
function silenceOf(
  row: Partial<OverviewRow>,
  built: Built,
  now: Date,
  endpointCreatedAt?: string,
): number | undefined {
  return row.endpointKind === 'agent' && built.enrolled.get(row.endpoint!)
    ? now.getTime() - Date.parse(row.lastSeenAt ?? endpointCreatedAt!)
    : undefined;
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
