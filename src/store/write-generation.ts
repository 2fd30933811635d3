/**
 * The store's write generation: a value that changes after every committed write this hub can see, so anything
 * derived from the store (a rendered API page, a token lookup) can be cached and known fresh by comparing the
 * generation it was made at with the current one. It is bumped in ONE place, the database driver (every write
 * statement outside a transaction, every commit: `withWriteGeneration`), so no store method can forget it (last-seen
 * and probe writes count like any other).
 *
 * What it cannot see is bounded here too:
 * - SQLite: other processes on the same file (a second hub, `certfleet hub reset-admin-token`) are seen through
 *   `PRAGMA data_version` (`external`), which changes when another connection commits; so it is exact.
 * - PostgreSQL: other hubs' commits are invisible until a cross-hub notification (LISTEN/NOTIFY) calls `bump()`;
 *   until then `maxStaleMs` (≤ 1 s) bounds how long a cached value may be used.
 */
import {
  CompiledQuery,
  InsertQueryNode,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';

export class WriteGeneration {
  private own = 0;

  constructor(
    private readonly opts: {
      /** Changes when another process commits (SQLite's `PRAGMA data_version`). */
      external?: () => number;
      /** How long a cached value may be used at most, when other writers are not all seen (PostgreSQL). */
      maxStaleMs?: number;
    } = {},
  ) {}

  /** After a commit of this hub, or a notification that another hub committed. */
  bump(): void {
    this.own++;
  }

  /** Compare with `===` only: equal values mean nothing was committed in between. */
  current(): string {
    return this.opts.external ? `${this.own}.${this.opts.external()}` : String(this.own);
  }

  /** Take BEFORE reading what a cached value is made of; the value is fresh while `isFresh(stamp)`. */
  stamp(): GenerationStamp {
    return { generation: this.current(), at: performance.now() };
  }

  isFresh(stamp: GenerationStamp): boolean {
    const { maxStaleMs } = this.opts;
    if (maxStaleMs !== undefined && performance.now() - stamp.at >= maxStaleMs) return false;
    return stamp.generation === this.current();
  }
}

export interface GenerationStamp {
  generation: string;
  /** performance.now() when taken: the staleness bound is about real time between hubs, not the hub's clock. */
  at: number;
}

/** A bounded map of values derived from the store, each used while nothing was committed since it was read. */
export class GenerationCache<K, V> {
  private readonly entries = new Map<K, { value: V; stamp: GenerationStamp }>();

  constructor(
    private readonly generation: WriteGeneration,
    private readonly maxEntries: number,
  ) {}

  async get(key: K, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && this.generation.isFresh(hit.stamp)) return hit.value;
    const stamp = this.generation.stamp();
    const value = await load();
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, stamp });
    return value;
  }
}

/** Reads (SELECT, WITH … SELECT, PRAGMA, EXPLAIN) leave the generation alone; anything else may write. */
const READ_SQL = /^\s*(select|with|pragma|explain)\b/i;

/**
 * Tables nothing cached is derived from: writing them leaves cached pages fresh. The agents' nonces are written by
 * every signed request (on PostgreSQL): counted as writes, a fleet's idle long-polls alone would empty the hub's
 * page cache dozens of times a second.
 */
const UNCACHED_TABLES = new Set(['agent_nonces']);

function mayWrite(query: CompiledQuery): boolean {
  const kind = query.query.kind;
  if (kind === 'SelectQueryNode') return false;
  if (InsertQueryNode.is(query.query) && UNCACHED_TABLES.has(query.query.into?.table.identifier.name ?? ''))
    return false;
  if (kind === 'RawNode') return !READ_SQL.test(query.sql);
  return true;
}

/** A connection that bumps after each write statement it runs (in a transaction too: the commit bumps again). */
class GenerationConnection implements DatabaseConnection {
  constructor(
    readonly inner: DatabaseConnection,
    private readonly generation: WriteGeneration,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return await this.inner.executeQuery<R>(query);
    } finally {
      if (mayWrite(query)) this.generation.bump();
    }
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

/**
 * The driver of `dialect` with the generation bumped after every commit (and rollback: harmless, and a failed
 * COMMIT may still have committed on some drivers) and every write statement. The bump comes after the commit, so
 * a reader that saw the old generation can only have cached what it read before: its entry is invalid at once.
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

  beginTransaction(c: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.inner.beginTransaction(innerOf(c), settings);
  }

  async commitTransaction(c: DatabaseConnection): Promise<void> {
    try {
      await this.inner.commitTransaction(innerOf(c));
    } finally {
      this.generation.bump();
    }
  }

  async rollbackTransaction(c: DatabaseConnection): Promise<void> {
    try {
      await this.inner.rollbackTransaction(innerOf(c));
    } finally {
      this.generation.bump();
    }
  }

  releaseConnection(c: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(innerOf(c));
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

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
