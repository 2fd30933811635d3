import { request as httpRequest, type Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';

export interface RawAnswer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * One HTTP(S) request with exactly the given method, headers and body, answered as status, text and headers: for
 * tests that look at what a hub (or a proxy in front of it) does with a request as a browser or script sends it.
 * Over https it trusts `ca` only; a JSON body gets its content type.
 */
export function rawRequest(
  url: string | URL,
  opts: {
    method?: string;
    headers?: Record<string, string>;
    /** Sent as JSON. */
    json?: unknown;
    /** Sent as it is. */
    body?: string;
    ca?: string;
    agent?: HttpAgent | HttpsAgent | false;
    /** Sent exactly as given (no URL normalisation of dot segments, double slashes or escapes): `url` gives the host. */
    path?: string;
  } = {},
): Promise<RawAnswer> {
  const u = new URL(url);
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  const payload = opts.json !== undefined ? JSON.stringify(opts.json) : opts.body;
  return new Promise((resolve, reject) => {
    const req = send(
      {
        protocol: u.protocol,
        hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'), // IPv6 without its URL brackets
        port: u.port,
        path: opts.path ?? `${u.pathname}${u.search}`,
        method: opts.method ?? 'GET',
        agent: opts.agent ?? false,
        ...(opts.ca ? { ca: opts.ca } : {}),
        headers: {
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
