/**
 * A stand-in for a load balancer's certificate API (no real product): HTTPS with its own openssl CA, a bearer
 * token, certificate upload as JSON (PEM) and as base64 PKCS#12, and an "activate" call after which its TLS port
 * serves the uploaded certificate. A wrong token gets 401 with the token echoed back (as careless APIs do), so
 * tests can prove certfleet never repeats it.
 */
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { makeLocalhostTls } from './localhost-tls.ts';

export interface Upload {
  name: string;
  kind: 'pem' | 'pfx';
  certificate?: string;
  chain?: string;
  key?: string;
  pfx?: Buffer;
  password?: string;
}

export interface StandinLbApi {
  /** https://127.0.0.1:PORT */
  url: string;
  /** The CA that issued the API's own certificate (the connector's caPem). */
  caPem: string;
  /** The TLS port that serves the activated certificate (a placeholder before the first activation). */
  servePort: number;
  token: string;
  uploads: Upload[];
  activations: string[];
  /** Answer the next `n` activate calls with 500. */
  failActivate(n: number): void;
  close(): Promise<void>;
}

export async function startStandinLbApi(dir: string, token: string): Promise<StandinLbApi> {
  const own = await makeLocalhostTls(dir);
  const uploads: Upload[] = [];
  const activations: string[] = [];
  let failActivate = 0;
  const sockets = new Set<Socket>();

  const serve: TlsServer = createTlsServer({ cert: own.certPem, key: own.keyPem });
  const api = createHttpsServer({ cert: own.certPem, key: own.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const given = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (given !== token) return answer(401, { error: `invalid token "${given}"` });
      let body: Record<string, string>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return answer(400, { error: 'body is not JSON' });
      }
      const url = new URL(req.url ?? '/', 'https://x');
      const pem = /^\/api\/v1\/certificates\/([^/]+)$/.exec(url.pathname);
      const pfx = /^\/api\/v1\/certificates\/([^/]+)\/pfx$/.exec(url.pathname);
      if (req.method === 'PUT' && pem) {
        uploads.push({ name: decodeURIComponent(pem[1]), kind: 'pem', ...body });
        return answer(200, { status: 'ok' });
      }
      if (req.method === 'POST' && pfx) {
        uploads.push({
          name: decodeURIComponent(pfx[1]),
          kind: 'pfx',
          pfx: Buffer.from(body.pfx, 'base64'),
          password: body.password,
        });
        return answer(200, { status: 'ok' });
      }
      if (req.method === 'POST' && url.pathname === '/api/v1/activate') {
        if (failActivate > 0) {
          failActivate--;
          return answer(500, { error: 'activation failed on purpose' });
        }
        const last = uploads.filter((u) => u.kind === 'pem' && u.name === body.certificate).at(-1);
        if (!last) return answer(404, { error: `no certificate ${body.certificate}` });
        serve.setSecureContext({ cert: last.certificate! + last.chain!, key: last.key! });
        activations.push(body.certificate);
        return answer(200, { status: 'active' });
      }
      answer(404, { error: 'no such route' });
    });
  });
  for (const s of [api, serve])
    s.on('connection', (c: Socket) => (sockets.add(c), c.on('close', () => sockets.delete(c))));
  const listen = (s: TlsServer | typeof api) =>
    new Promise<number>((resolve) =>
      s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)),
    );
  const apiPort = await listen(api);
  const servePort = await listen(serve);
  return {
    url: `https://127.0.0.1:${apiPort}`,
    caPem: own.caPem,
    servePort,
    token,
    uploads,
    activations,
    failActivate: (n) => (failActivate = n),
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([api, serve].map((s) => new Promise((r) => s.close(r))));
    },
  };
}
