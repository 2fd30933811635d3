/**
 * The store's write generation, per table: counters that change after every committed write this hub can see, so
 * anything derived from the store (a rendered API page, a token lookup) can be cached and known fresh by comparing
 * the counters of the tables it was read from with the current ones. They are bumped in ONE place, the database
 * driver (every write statement outside a transaction, every commit: `withWriteGeneration`), so no store method can
 * forget them (last-seen and probe writes count like any other).
 *
 * Which tables a write bumps is read from its query node (`tablesWritten`), deny by default: INSERT into, UPDATE
 * of, DELETE from a table bump that table (a DELETE, or an INSERT OR REPLACE, also the tables its foreign keys
 * cascade to); raw SQL that is not a read, DDL, or any node not known here bumps ALL tables. Writes inside a
 * transaction are collected and bumped at its commit. One column is tracked apart from its table: an UPDATE that
 * sets only `endpoints.last_seen_at` (agents' contacts, thousands a minute in a large fleet) bumps the pseudo-table
 * `endpoints.last_seen_at`, not `endpoints`; any other write to `endpoints` bumps both. So a value that shows last
 * contact names both, and the certificates, subscriptions or deployments read with endpoint names stay fresh.
 *
 * What it cannot see is bounded here too, and bumps ALL tables:
 * - SQLite: other processes on the same file (a second hub, `certfleet hub reset-admin-token`) are seen through
 *   `PRAGMA data_version` (`external`), which changes when another connection commits; so it is exact.
 * - PostgreSQL: other hubs' commits are invisible until a cross-hub notification (LISTEN/NOTIFY) calls `bump()`;
 *   until then `maxStaleMs` (≤ 1 s) bounds how long a cached value may be used.
 */
import {
  AliasNode,
  ColumnNode,
  CompiledQuery,
  DeleteQueryNode,
  InsertQueryNode,
  TableNode,
  UpdateQueryNode,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type OperationNode,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import type { Database } from './schema.ts';
import { setBounded } from '../core/bounded-map.ts';

/** What a cached value may be derived from: a table, or a column tracked apart from its table (see above). */
export type Source = keyof Database | 'endpoints.last_seen_at';

/** Everything: a write whose tables are unknown, another process's or hub's commit. */
export const ALL = 'all';

/** Columns tracked apart from their table: an UPDATE setting only these bumps `table.column` alone. */
const TRACKED_COLUMNS: Readonly<Record<string, readonly string[]>> = { endpoints: ['last_seen_at'] };

/**
 * ON DELETE CASCADE (src/store/migrations.ts; test/store/write-generation.test.ts pins it against the schema): a
 * DELETE from the key bumps these tables too, transitively.
 */
export const CASCADES: Readonly<Record<string, readonly string[]>> = {
  certificates: ['versions', 'subscriptions', 'campaign_items'],
  endpoints: ['subscriptions', 'tokens', 'probe_results'],
  subscriptions: ['deployments'],
  versions: ['deployments'],
  campaigns: ['campaign_items'],
};

export class WriteGeneration {
  /** Bumped on every bump: `current()`. */
  private any = 0;
  /** Bumped when all tables are. */
  private epoch = 0;
  private readonly tables = new Map<string, number>();

  constructor(
    private readonly opts: {
      /** Changes when another process commits (SQLite's `PRAGMA data_version`). */
      external?: () => number;
      /** How long a cached value may be used at most, when other writers are not all seen (PostgreSQL). */
      maxStaleMs?: number;
    } = {},
  ) {}

  /**
   * Every commit to the database is seen the moment it is made (SQLite: this process's, and others' through
   * `external`), not within `maxStaleMs` (PostgreSQL: other hubs' only through a notification). Only then may a
   * fresh stamp stand for "nothing was committed" when a missed commit would matter (the rate-limit budget).
   */
  get seesEveryCommit(): boolean {
    return this.opts.maxStaleMs === undefined;
  }

  /** After a commit of this hub that wrote `tables` (ALL: unknown), or a notification that another hub committed. */
  bump(tables: Iterable<string> | typeof ALL = ALL): void {
    this.any++;
    if (tables === ALL) {
      this.epoch++;
      return;
    }
    for (const t of tables) {
      this.tables.set(t, (this.tables.get(t) ?? 0) + 1);
      for (const c of TRACKED_COLUMNS[t] ?? [])
        this.tables.set(`${t}.${c}`, (this.tables.get(`${t}.${c}`) ?? 0) + 1);
    }
  }

  /** What `sources` (omitted: anything) were read at: compare with `===` only; equal means nothing was committed. */
  current(sources?: readonly Source[]): string {
    const counts = sources ? sources.map((t) => this.tables.get(t) ?? 0).join(',') : this.any;
    return `${this.epoch}.${this.opts.external?.() ?? 0}.${counts}`;
  }

  /**
   * Take BEFORE reading what a cached value is made of (from `sources`; omitted: from anything); the value is
   * fresh while `isFresh(stamp)`.
   */
  stamp(sources?: readonly Source[]): GenerationStamp {
    return {
      epoch: this.epoch,
      external: this.opts.external?.() ?? 0,
      sources,
      counts: sources ? sources.map((t) => this.tables.get(t) ?? 0) : [this.any],
      at: performance.now(),
    };
  }

  /**
   * Nothing the value was read from was committed since its stamp; `except`: sources whose commits do not count
   * (a value allowed to show them late for a while, e.g. last contact on a cached page: page-cache.ts).
   */
  isFresh(stamp: GenerationStamp, except?: ReadonlySet<Source>): boolean {
    const { maxStaleMs, external } = this.opts;
    if (maxStaleMs !== undefined && performance.now() - stamp.at >= maxStaleMs) return false;
    if (stamp.epoch !== this.epoch || (external && stamp.external !== external())) return false;
    const { sources, counts } = stamp;
    if (!sources) return counts[0] === this.any;
    for (let i = 0; i < sources.length; i++)
      if (counts[i] !== (this.tables.get(sources[i]) ?? 0) && !except?.has(sources[i])) return false;
    return true;
  }
}

export interface GenerationStamp {
  epoch: number;
  external: number;
  /** The tables (and tracked columns) the value was read from; undefined: anything. */
  sources: readonly Source[] | undefined;
  counts: number[];
  /** performance.now() when taken: the staleness bound is about real time between hubs, not the hub's clock. */
  at: number;
}

/** A bounded map of values derived from the store, each used while nothing it was read from was committed since. */
export class GenerationCache<K, V> {
  private readonly entries = new Map<K, { value: V; stamp: GenerationStamp }>();

  constructor(
    private readonly generation: WriteGeneration,
    private readonly maxEntries: number,
    /** What every value is read from (omitted: anything). */
    private readonly sources?: readonly Source[],
  ) {}

  async get(key: K, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && this.generation.isFresh(hit.stamp)) return hit.value;
    const stamp = this.generation.stamp(this.sources);
    const value = await load();
    setBounded(this.entries, this.maxEntries, key, { value, stamp });
    return value;
  }
}

/** Reads (SELECT, WITH … SELECT, PRAGMA, EXPLAIN) write nothing; any other raw statement may write anything. */
const READ_SQL = /^\s*(select|with|pragma|explain)\b/i;

/** The tables `query` may write, read from its node (see the header); ALL when not known. */
export function tablesWritten(query: CompiledQuery): ReadonlySet<string> | typeof ALL {
  const node = query.query;
  if (node.kind === 'SelectQueryNode') return NONE;
  if (node.kind === 'RawNode') return READ_SQL.test(query.sql) ? NONE : ALL;
  // a WITH on a write may hold another write (PostgreSQL's data-modifying CTEs)
  if ('with' in node && node.with) return ALL;
  if (InsertQueryNode.is(node)) {
    const table = tableName(node.into);
    if (!table) return ALL;
    return node.replace ? withCascades([table]) : new Set([table]);
  }
  if (UpdateQueryNode.is(node)) {
    const table = node.table && tableName(node.table);
    if (!table) return ALL;
    const tracked = TRACKED_COLUMNS[table];
    const set = node.updates?.map((u) => (ColumnNode.is(u.column) ? u.column.column.name : '')) ?? [];
    if (tracked && set.length > 0 && set.every((c) => tracked.includes(c)))
      return new Set(set.map((c) => `${table}.${c}`));
    return new Set([table]);
  }
  if (DeleteQueryNode.is(node)) {
    const tables = node.from.froms.map(tableName);
    if (tables.some((t) => !t)) return ALL;
    return withCascades(tables as string[]);
  }
  return ALL;
}

const NONE: ReadonlySet<string> = new Set();

function tableName(node: OperationNode | undefined): string | undefined {
  if (node && AliasNode.is(node)) node = node.node;
  return node && TableNode.is(node) ? node.table.identifier.name : undefined;
}

function withCascades(tables: readonly string[]): Set<string> {
  const out = new Set<string>();
  const visit = (t: string) => {
    if (out.has(t)) return;
    out.add(t);
    for (const c of CASCADES[t] ?? []) visit(c);
  };
  tables.forEach(visit);
  return out;
}

/**
 * A connection that bumps the tables of each write statement it runs after it ran; inside a transaction it
 * collects them for the commit instead (what a reader sees changes at the commit, not before).
 */
class GenerationConnection implements DatabaseConnection {
  /** The tables written in the open transaction (ALL: unknown), or undefined outside one. */
  pending: Set<string> | typeof ALL | undefined;

  constructor(
    readonly inner: DatabaseConnection,
    private readonly generation: WriteGeneration,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return await this.inner.executeQuery<R>(query);
    } finally {
      const written = tablesWritten(query);
      if (this.pending === undefined) {
        if (written === ALL || written.size > 0) this.generation.bump(written);
      } else if (this.pending !== ALL) {
        if (written === ALL) this.pending = ALL;
        else for (const t of written) this.pending.add(t);
      }
    }
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }

  /** Ends the transaction's collection: its tables are bumped now (after its COMMIT or ROLLBACK). */
  settle(): void {
    const written = this.pending;
    this.pending = undefined;
    if (written === ALL || (written && written.size > 0)) this.generation.bump(written);
  }
}

/**
 * The driver of `dialect` with the tables a transaction wrote bumped after its commit (and rollback: harmless, and
 * a failed COMMIT may still have committed on some drivers), and those of each write statement outside one after
 * it. The bump comes after the commit, so a reader that saw the old counters can only have cached what it read
 * before: its entry is invalid at once.
 */
class GenerationDriver implements Driver {
  constructor(
    private readonly inner: Driver,
    private readonly generation: WriteGeneration,
  ) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new GenerationConnection(await this.inner.acquireConnection(), this.generation);
  }

  async beginTransaction(c: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await this.inner.beginTransaction(innerOf(c), settings);
    if (c instanceof GenerationConnection) c.pending = new Set();
  }

  async commitTransaction(c: DatabaseConnection): Promise<void> {
    try {
      await this.inner.commitTransaction(innerOf(c));
    } finally {
      settle(c);
    }
  }

  async rollbackTransaction(c: DatabaseConnection): Promise<void> {
    try {
      await this.inner.rollbackTransaction(innerOf(c));
    } finally {
      settle(c);
    }
  }

  releaseConnection(c: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(innerOf(c));
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

const settle = (c: DatabaseConnection): void => {
  if (c instanceof GenerationConnection) c.settle();
};

const innerOf = (c: DatabaseConnection): DatabaseConnection =>
  c instanceof GenerationConnection ? c.inner : c;

/** `dialect` whose driver keeps `generation` (see above); adapter, compiler and introspector unchanged. */
export function withWriteGeneration(dialect: Dialect, generation: WriteGeneration): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createDriver: () => new GenerationDriver(dialect.createDriver(), generation),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createIntrospector: (db) => dialect.createIntrospector(db),
  };
}
