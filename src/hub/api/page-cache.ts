/**
 * Rendered-page cache for read routes that opt in with `config: { pageCache: true }`: the serialised body of a 200
 * answer (whatever serialiser produced it) and the headers that name the next page, keyed by (route, params,
 * normalised query, role) and valid while nothing the route `reads` was written (src/store/write-generation.ts:
 * counters per table bumped after every commit, so a cached page is never older than this hub's own last commit of
 * a table it reads; on PostgreSQL at most 1 s older than another hub's). A route that names no `reads` is emptied by
 * any commit. A route whose answer also moves with the clock names a `maxAgeMs`.
 *
 * Every such answer carries a strong ETag (hash of the body), `cache-control: private, no-cache` and `vary:
 * accept-encoding`; a request whose If-None-Match names the current body gets 304. A client that accepts gzip
 * (browsers always do) gets the page gzip-compressed, compressed once per stored page (on the first such request)
 * and answered from those bytes afterwards, with its own ETag (`"<hash>-gz"`: a gzip body is another
 * representation); clients that send no `accept-encoding` get the identity bytes (the CLI asks for gzip too).
 *
 * Last contact may show late: a commit that wrote only `lagging` sources (agents' `last_seen_at` touches, which a
 * large fleet commits every 2 s in batches) leaves a page that shows them cached for `lagMs` to 2 × `lagMs` after
 * it was rendered (each page its own delay in that range, so the pages showing last contact are rendered again
 * spread over time, not all at once after every batch). Any other commit to what a page reads empties it at once.
 *
 * Concurrent misses of one key wait for the first (one render per page and generation, however many clients ask at
 * once). Auth still runs first on every request (access.ts's `onRequest` hook comes before ours), so the cache never
 * answers a request its route would refuse.
 *
 * A hit is answered as early as it can be: a request URL seen before (same role) names its page key in `aliases`,
 * so its hit is served in `onRequest`, right after auth, with no query validation, key building or other hooks (a
 * URL that passed validation once passes again). A URL not seen yet is validated and keyed in `preHandler`, where
 * it may still hit the page of the same query written differently.
 */
import { hash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GenerationStamp, Source, WriteGeneration } from '../../store/write-generation.ts';
import { setBounded } from '../../core/bounded-map.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Cache this GET route's rendered 200 answers (see page-cache.ts): `maxAgeMs` for answers that age; `reads`,
     * every table (and tracked column) the answer is read from, so a commit that wrote none of them leaves it
     * cached (omitted: any commit empties it).
     */
    pageCache?: true | PageCacheConfig;
  }
  interface FastifyRequest {
    pageFill?: { key: string; stamp: GenerationStamp; done: () => void };
  }
}

export interface PageCacheConfig {
  maxAgeMs?: number;
  reads?: readonly Source[];
}

const DEFAULT_MAX_ENTRIES = 4000;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/** Response headers a cached answer replays (pagination and type; the rest are set per request by hooks). */
const REPLAYED = ['content-type', 'x-next-cursor', 'link'] as const;

/** Bodies smaller than this are answered uncompressed: gzip's framing would eat the saving. */
const GZIP_MIN_BYTES = 1024;

/** One encoding of a stored page: the bytes a hit writes as they are, its ETag and all its headers. */
interface Representation {
  body: Buffer;
  etag: string;
  /** Validators (etag, cache-control, vary), the replayed headers and, for gzip, content-encoding. */
  headers: Record<string, string>;
}

interface Entry {
  stamp: GenerationStamp;
  storedAt: number;
  /** Until when commits of only the lagging sources leave it fresh (performance.now() time). */
  lagUntil: number;
  identity: Representation;
  /** Made on the first request that accepts gzip; null: gzip would not be smaller. */
  gzip?: Representation | null;
}

export interface PageCacheOptions {
  /** At most this many pages (least recently used go first). */
  maxEntries?: number;
  /** At most this many body bytes in all. */
  maxBytes?: number;
  /** false: nothing is cached (for measuring what a page costs to render). */
  enabled?: boolean;
  /** How late pages may show commits of `sources` alone (see above); ms 0: never late. */
  lagging?: { sources: readonly Source[]; ms: number };
}

/** Agents' contacts may show late on cached pages by default (the hub writes them in batches anyway). */
export const DEFAULT_LAGGING = {
  sources: ['endpoints.last_seen_at'],
  ms: 5000,
} as const satisfies NonNullable<PageCacheOptions['lagging']>;

export interface PageCacheStats {
  hits: number;
  misses: number;
  notModified: number;
  entries: number;
  bytes: number;
}

export class PageCache {
  private readonly entries = new Map<string, Entry>();
  /** Role + request URL → page key, learned in `preHandler`; bounded like the entries. */
  private readonly aliases = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<void>>();
  private bytes = 0;
  private readonly lagging: { sources: ReadonlySet<Source>; ms: number };
  readonly stats = { hits: 0, misses: 0, notModified: 0 };

  constructor(
    private readonly generation: WriteGeneration,
    private readonly opts: PageCacheOptions = {},
  ) {
    const { sources, ms } = opts.lagging ?? DEFAULT_LAGGING;
    this.lagging = { sources: new Set(sources), ms };
  }

  install(app: FastifyInstance): void {
    app.addHook('onRequest', async (req, reply) => this.early(req, reply));
    app.addHook('preHandler', async (req, reply) => this.lookup(req, reply));
    app.addHook('onSend', async (req, reply, payload) => this.fill(req, reply, payload));
    const release = async (req: FastifyRequest) => req.pageFill?.done();
    app.addHook('onResponse', release);
    app.addHook('onRequestAbort', release);
  }

  snapshot(): PageCacheStats {
    return { ...this.stats, entries: this.entries.size, bytes: this.bytes };
  }

  /** A hit for a request URL seen before; anything else goes on to validation and `lookup`. */
  private async early(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const config = req.routeOptions.config.pageCache;
    if (!config || req.method !== 'GET') return undefined;
    const key = this.aliases.get(aliasOf(req));
    const entry = key === undefined ? undefined : this.fresh(key, config);
    return entry && this.answer(req, reply, entry);
  }

  private async lookup(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const config = req.routeOptions.config.pageCache;
    if (!config || req.method !== 'GET') return undefined;
    const key = keyOf(req);
    this.remember(aliasOf(req), key);
    for (let attempt = 0; ; attempt++) {
      const entry = this.fresh(key, config);
      if (entry) return this.answer(req, reply, entry);
      const pending = this.inflight.get(key);
      // one wait only: if that render did not leave a fresh entry (an error, a write meanwhile), render our own
      if (!pending || attempt > 0) break;
      await pending;
    }
    this.stats.misses++;
    if (this.opts.enabled === false) return undefined;
    let done!: () => void;
    const rendered = new Promise<void>((resolve) => (done = resolve));
    if (!this.inflight.has(key)) this.inflight.set(key, rendered);
    req.pageFill = {
      key,
      stamp: this.generation.stamp(config === true ? undefined : config.reads),
      done: () => {
        if (this.inflight.get(key) === rendered) this.inflight.delete(key);
        done();
      },
    };
    return undefined;
  }

  private remember(alias: string, key: string): void {
    if (this.aliases.get(alias) === key) return;
    setBounded(this.aliases, this.opts.maxEntries ?? DEFAULT_MAX_ENTRIES, alias, key);
  }

  private fresh(key: string, config: true | PageCacheConfig): Entry | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const maxAgeMs = config === true ? undefined : config.maxAgeMs;
    const now = performance.now();
    const aged = maxAgeMs !== undefined && now - entry.storedAt >= maxAgeMs;
    const fresh =
      this.generation.isFresh(entry.stamp) ||
      (now < entry.lagUntil && this.generation.isFresh(entry.stamp, this.lagging.sources));
    if (aged || !fresh) {
      this.drop(key, entry);
      return undefined;
    }
    // least recently used last
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  private answer(req: FastifyRequest, reply: FastifyReply, entry: Entry): FastifyReply {
    const rep = this.representation(req, entry);
    if (etagMatches(req.headers['if-none-match'], rep.etag)) {
      this.stats.notModified++;
      return reply.headers(validatorsOf(rep.etag)).code(304).send();
    }
    this.stats.hits++;
    return reply.headers(rep.headers).send(rep.body);
  }

  /** The encoding this request gets: gzip if it accepts it and gzip is smaller (compressed once), else identity. */
  private representation(req: FastifyRequest, entry: Entry, stored = true): Representation {
    const { identity } = entry;
    if (identity.body.length < GZIP_MIN_BYTES || !acceptsGzip(req.headers['accept-encoding']))
      return identity;
    if (entry.gzip === undefined) {
      const body = gzipSync(identity.body);
      entry.gzip =
        body.length < identity.body.length
          ? {
              body,
              etag: identity.etag.replace(/"$/, '-gz"'),
              headers: { ...identity.headers, 'content-encoding': 'gzip' },
            }
          : null;
      if (entry.gzip) entry.gzip.headers.etag = entry.gzip.etag;
      if (entry.gzip && stored) {
        this.bytes += body.length;
        this.evict();
      }
    }
    return entry.gzip ?? identity;
  }

  private async fill(req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
    const fill = req.pageFill;
    if (!fill || reply.statusCode !== 200) return payload;
    if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return payload;
    // encoded once: a hit writes these bytes as they are
    const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const etag = `"${hash('sha1', body, 'base64url')}"`;
    const headers: Record<string, string> = validatorsOf(etag);
    for (const h of REPLAYED) {
      const v = reply.getHeader(h);
      if (v !== undefined) headers[h] = String(v);
    }
    const storedAt = performance.now();
    const entry: Entry = {
      stamp: fill.stamp,
      storedAt,
      lagUntil: storedAt + this.lagging.ms * (1 + Math.random()),
      identity: { body, etag, headers },
    };
    // the filling request gets what a hit with its headers would get (gzip included)
    const rep = this.representation(req, entry, false);
    void reply.headers(rep.headers);
    this.store(fill.key, entry);
    fill.done();
    return rep.body;
  }

  private store(key: string, entry: Entry): void {
    if (entry.identity.body.length > (this.opts.maxBytes ?? DEFAULT_MAX_BYTES) / 4) return;
    const old = this.entries.get(key);
    if (old) this.drop(key, old);
    this.entries.set(key, entry);
    this.bytes += sizeOf(entry);
    this.evict();
  }

  /** Least recently used first, until within both bounds. */
  private evict(): void {
    const maxBytes = this.opts.maxBytes ?? DEFAULT_MAX_BYTES;
    const maxEntries = this.opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
    for (const [k, e] of this.entries) {
      if (this.entries.size <= maxEntries && this.bytes <= maxBytes) break;
      this.drop(k, e);
    }
  }

  private drop(key: string, entry: Entry): void {
    if (this.entries.get(key) !== entry) return;
    this.entries.delete(key);
    this.bytes -= sizeOf(entry);
  }
}

const sizeOf = (entry: Entry): number => entry.identity.body.length + (entry.gzip?.body.length ?? 0);

/**
 * Route pattern, params, the validated query with sorted keys (so `?b=1&a=2` and `?a=2&b=1`, or `limit=050` and
 * `limit=50`, are one page), and the role of the credential (a read and an admin token may one day see different
 * answers).
 */
function keyOf(req: FastifyRequest): string {
  const sorted = (o: unknown) =>
    o && typeof o === 'object'
      ? JSON.stringify(Object.entries(o as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : '';
  return `${req.routeOptions.url}\n${sorted(req.params)}\n${sorted(req.query)}\n${req.token?.kind ?? 'anonymous'}`;
}

/** The role and the URL as the client sent it (path and query): an exact repeat of a request `lookup` keyed. */
const aliasOf = (req: FastifyRequest): string => `${req.token?.kind ?? 'anonymous'} ${req.url}`;

/** What every answer of a cached route carries, 200 or 304 (its encoding depends on accept-encoding). */
const validatorsOf = (etag: string): Record<string, string> => ({
  etag,
  'cache-control': 'private, no-cache',
  vary: 'accept-encoding',
});

/** RFC 9110 Accept-Encoding: gzip (or `*`) listed with a non-zero weight, and not refused by name. */
function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  let star = false;
  for (const part of header.split(',')) {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const accepted = q === undefined || Number(q.slice(2)) > 0;
    if (coding.trim() === 'gzip' || coding.trim() === 'x-gzip') return accepted;
    if (coding.trim() === '*') star = accepted;
  }
  return star;
}

/** RFC 9110 If-None-Match: a list of entity tags (weak ones compare weakly), or `*`. */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}
