import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body exactly as received (what an HMAC is computed over). */
  body: string;
  /** The status the receiver answered with. */
  status: number;
}

export interface HttpReceiver {
  url: string;
  port: number;
  /** Every request, failed ones included, in arrival order. */
  requests: ReceivedRequest[];
  /** Requests answered 2xx. */
  accepted(): ReceivedRequest[];
  /** Answer the next `n` requests with `status` (default 500). */
  failNext(n: number, status?: number, body?: string): void;
  /** Never answer the next `n` requests (recorded with status 0), to exercise client timeouts. */
  hangNext(n: number): void;
  close(): Promise<void>;
}

/** A real HTTP server on a free loopback port that records requests; can fail the first N with 500. */
export async function startHttpReceiver(
  opts: { failFirst?: number; failStatus?: number; failBody?: string } = {},
): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = [];
  let failLeft = opts.failFirst ?? 0;
  let failStatus = opts.failStatus ?? 500;
  let failBody = opts.failBody ?? 'receiver failing on purpose';
  let hangLeft = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (hangLeft > 0) {
        hangLeft--;
        const body = Buffer.concat(chunks).toString('utf8');
        requests.push({
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          body,
          status: 0,
        });
        return;
      }
      const failing = failLeft > 0;
      if (failing) failLeft--;
      const status = failing ? failStatus : 200;
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        status,
      });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(failing ? failBody : 'ok');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    accepted: () => requests.filter((r) => r.status < 300),
    failNext(n, status = 500, body = 'receiver failing on purpose') {
      failLeft = n;
      failStatus = status;
      failBody = body;
    },
    hangNext(n) {
      hangLeft = n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nothing listens on (bound, then released), for "channel is down" cases. */
export async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
