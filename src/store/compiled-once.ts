import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import type { Database } from './schema.ts';

/**
 * A statement Kysely builds and compiles once per store, then runs with new values: Kysely otherwise builds the
 * operation tree and compiles it to SQL on every call, 20–40 µs of JavaScript, and a renewal runs about 25 statements
 * (Kysely's "splitting build, compile and execute" recipe). `build` receives a marker for each parameter; the
 * markers are found among the compiled parameters, so constants the builder binds stay where they are. Only for
 * statements whose shape never depends on their values: no `in` lists, no optional columns.
 */
export class CompiledOnce<P extends unknown[], R> {
  private compiled?: { query: CompiledQuery<R>; slots: number[] };

  constructor(private readonly build: (db: Kysely<Database>, ...params: P) => Compilable<R>) {}

  /** Runs on `db`, or on a transaction of the same database (a Transaction is a Kysely). */
  async run(db: Kysely<Database>, ...params: P): Promise<QueryResult<R>> {
    let c = this.compiled;
    if (!c) {
      const marks = params.map((_, i) => `\u0000certfleet-parameter-${i}\u0000`);
      const query = this.build(db, ...(marks as P)).compile();
      const slots = query.parameters.map((v) => marks.indexOf(v as string));
      if (marks.some((_, i) => !slots.includes(i)))
        throw new Error('a parameter of the statement is not bound');
      c = this.compiled = { query, slots };
    }
    const { query, slots } = c;
    return db.executeQuery<R>({
      ...query,
      parameters: slots.map((s, k) => (s >= 0 ? params[s] : query.parameters[k])),
    });
  }

  async first(db: Kysely<Database>, ...params: P): Promise<R | undefined> {
    return (await this.run(db, ...params)).rows[0];
  }
}
