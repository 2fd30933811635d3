import { createServer, type Server } from 'node:http';
import type { ChallengeInput, Solver } from './solver.ts';

/**
 * Where the hub keeps http-01 answers. Contract: `put` makes the answer visible to every responder reading this
 * store before it resolves; `get` returns undefined for unknown tokens. A shared (database) store lets any hub
 * of a cluster answer; this file has the in-memory one.
 */
export interface Http01TokenStore {
  put(token: string, keyAuthorization: string): Promise<void>;
  get(token: string): Promise<string | undefined>;
  delete(token: string): Promise<void>;
}

export class MemoryHttp01Store implements Http01TokenStore {
  private readonly tokens = new Map<string, string>();
  async put(token: string, keyAuthorization: string): Promise<void> {
    this.tokens.set(token, keyAuthorization);
  }
  async get(token: string): Promise<string | undefined> {
    return this.tokens.get(token);
  }
  async delete(token: string): Promise<void> {
    this.tokens.delete(token);
  }
}

/** RFC 8555 section 8.3: tokens are base64url; anything else is never looked up. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
export const HTTP01_PREFIX = '/.well-known/acme-challenge/';

/** The answer for a token, or undefined (respond 404). */
export async function handleHttp01(store: Http01TokenStore, token: string): Promise<string | undefined> {
  return TOKEN.test(token) ? store.get(token) : undefined;
}

/**
 * A route handler for the hub API (fastify: `app.get('/.well-known/acme-challenge/:token', http01Route(store))`).
 * Typed structurally so this module does not depend on fastify.
 */
export function http01Route(store: Http01TokenStore) {
  return async (
    request: { params: unknown },
    reply: { code(n: number): unknown; type(t: string): unknown; send(b: string): unknown },
  ) => {
    const token = String((request.params as { token?: unknown })?.token ?? '');
    const answer = await handleHttp01(store, token);
    reply.code(answer ? 200 : 404);
    reply.type('text/plain');
    return reply.send(answer ?? 'not found');
  };
}

export interface Http01Listener {
  port: number;
  close(): Promise<void>;
}

/** A standalone node:http listener answering only GET /.well-known/acme-challenge/<token> (404 otherwise). */
export function startHttp01Listener(opts: {
  host: string;
  port: number;
  store: Http01TokenStore;
}): Promise<Http01Listener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const respond = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !path.startsWith(HTTP01_PREFIX)) {
      return respond(404, 'not found');
    }
    handleHttp01(opts.store, path.slice(HTTP01_PREFIX.length)).then(
      (answer) => (answer ? respond(200, answer) : respond(404, 'not found')),
      () => respond(500, 'error'),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      const port = (server.address() as { port: number }).port;
      resolve({
        port,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/** The http-01 solver served by the hub: answers go into the token store its responders read. */
export class HubHttp01Solver implements Solver {
  readonly type = 'http-01' as const;
  constructor(private readonly store: Http01TokenStore) {}
  async present(ch: ChallengeInput): Promise<void> {
    await this.store.put(ch.token, ch.keyAuthorization);
  }
  async cleanup(ch: ChallengeInput): Promise<void> {
    await this.store.delete(ch.token);
  }
}
