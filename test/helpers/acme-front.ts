import { createServer, request, type Server } from 'node:https';
import type { Pebble } from './pebble.ts';

export interface AcmeFront {
  /** The directory URL to give issuers instead of pebble's. */
  directoryUrl: string;
  /** What GET renewalInfo/<certID> answers; change it between calls. */
  window: { start: Date; end: Date; explanationURL?: string; retryAfterSeconds?: number };
  /** Whether the directory advertises renewalInfo. */
  advertise: boolean;
  /** certIDs asked for at renewalInfo, in order. */
  renewalInfoRequests: string[];
  /** `replaces` of every new-order payload that went through (undefined when absent). */
  orderReplaces: Array<string | undefined>;
  /** Profiles the directory advertises in meta.profiles (name → description); undefined: none, as pebble 2.4. */
  profiles?: Record<string, string>;
  /** `profile` of every new-order payload, refused ones included (undefined when absent). */
  orderProfiles: Array<string | undefined>;
  /** `METHOD path` of every request that reached the front, in order. */
  requests: string[];
  stop(): Promise<void>;
}

/**
 * "ARI- and profile-aware front in front of Pebble": an HTTPS reverse proxy (same TLS cert and CA as pebble) that
 * adds what pebble 2.4 predates: RFC 9773 renewalInfo, and ACME profiles (draft-aaron-acme-profiles: the directory's
 * meta.profiles, and `invalidProfile` for a new-order naming a profile not offered; pebble itself ignores the field).
 * It keeps the Host header so pebble builds every URL on the proxy.
 */
export async function startAcmeFront(pebble: Pebble): Promise<AcmeFront> {
  const upstream = new URL(pebble.directoryUrl);
  const state: Omit<AcmeFront, 'directoryUrl' | 'stop'> = {
    window: { start: new Date(Date.now() + 86_400_000), end: new Date(Date.now() + 2 * 86_400_000) },
    advertise: true,
    renewalInfoRequests: [],
    orderReplaces: [],
    orderProfiles: [],
    requests: [],
  };
  /** A fresh nonce from pebble, for the answers the front gives itself (a client needs one for its next request). */
  const upstreamNonce = () =>
    new Promise<string>((resolve, reject) => {
      request(
        {
          host: '127.0.0.1',
          port: upstream.port,
          servername: 'localhost',
          ca: pebble.caPem,
          method: 'HEAD',
          path: '/nonce-plz',
        },
        (r) => {
          r.resume();
          resolve(String(r.headers['replay-nonce'] ?? ''));
        },
      )
        .on('error', reject)
        .end();
    });
  let origin = '';
  const server: Server = createServer({ cert: pebble.tlsCertPem, key: pebble.tlsKeyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = req.url ?? '/';
      state.requests.push(`${req.method} ${path}`);
      if (req.method === 'GET' && path.startsWith('/renewal-info/')) {
        state.renewalInfoRequests.push(path.slice('/renewal-info/'.length));
        const w = state.window;
        res.writeHead(200, {
          'content-type': 'application/json',
          ...(w.retryAfterSeconds !== undefined ? { 'retry-after': String(w.retryAfterSeconds) } : {}),
        });
        return res.end(
          JSON.stringify({
            suggestedWindow: { start: w.start.toISOString(), end: w.end.toISOString() },
            ...(w.explanationURL ? { explanationURL: w.explanationURL } : {}),
          }),
        );
      }
      if (req.method === 'POST' && body.length) {
        try {
          const jws = JSON.parse(body.toString());
          const payload = jws.payload ? JSON.parse(Buffer.from(jws.payload, 'base64url').toString()) : {};
          if (Array.isArray(payload.identifiers)) {
            state.orderReplaces.push(payload.replaces);
            state.orderProfiles.push(payload.profile);
            if (payload.profile !== undefined && !(state.profiles && payload.profile in state.profiles)) {
              void upstreamNonce().then((nonce) => {
                res.writeHead(400, { 'content-type': 'application/problem+json', 'replay-nonce': nonce });
                res.end(
                  JSON.stringify({
                    type: 'urn:ietf:params:acme:error:invalidProfile',
                    detail: `profile "${payload.profile}" is not one of the profiles this server offers`,
                    status: 400,
                  }),
                );
              });
              return;
            }
          }
        } catch {
          // not JSON: pebble will answer malformed
        }
      }
      const up = request(
        {
          host: '127.0.0.1',
          port: upstream.port,
          servername: 'localhost',
          ca: pebble.caPem,
          method: req.method,
          path,
          headers: req.headers, // Host stays the proxy's, so pebble's URLs point here
        },
        (ures) => {
          const parts: Buffer[] = [];
          ures.on('data', (c) => parts.push(c));
          ures.on('end', () => {
            let out = Buffer.concat(parts);
            if (path === upstream.pathname && ures.statusCode === 200) {
              const dir = JSON.parse(out.toString());
              if (state.advertise) dir.renewalInfo = `${origin}/renewal-info`;
              if (state.profiles) dir.meta = { ...dir.meta, profiles: state.profiles };
              out = Buffer.from(JSON.stringify(dir));
            }
            const headers = { ...ures.headers, 'content-length': String(out.length) };
            delete headers['transfer-encoding'];
            res.writeHead(ures.statusCode ?? 502, headers);
            res.end(out);
          });
        },
      );
      up.on('error', (e) => res.writeHead(502).end(String(e)));
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `https://localhost:${(server.address() as { port: number }).port}`;
  return Object.assign(state, {
    directoryUrl: `${origin}${upstream.pathname}`,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}
