import { request as httpsRequest } from 'node:https';
import { CertfleetError } from '../core/errors.ts';

export interface HttpAnswer {
  status: number;
  /** At most MAX_BODY bytes of the answer, as text. */
  body: string;
}

export interface SendOptions {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Buffer;
  /** PEM bundle replacing the system trust store for this request; absent: system trust. */
  caPem?: string;
  /** The whole request: connect, TLS, send and the full answer. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Names the request in errors (never the filled URL: it may carry a secret). */
  label: string;
}

const MAX_BODY = 1024 * 1024;

/** TLS errors that mean "the API's certificate is not trusted (or not for this name)", not "unreachable". */
const TRUST_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * One HTTPS request of an http connector, always verifying the server's certificate (against `caPem` when given,
 * else the system's roots; there is no switch to skip it). Every failure is a CertfleetError naming the request:
 * UNREACHABLE (no connection, no answer within the timeout), REMOTE_TLS_UNTRUSTED (certificate not trusted).
 * Redirects are not followed (a redirect is an answer, judged by the step's criteria).
 */
export function sendHttps(o: SendOptions): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (e: unknown, answer?: HttpAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      req.destroy();
      if (answer) resolve(answer);
      else reject(e);
    };
    const where = `${o.url.protocol}//${o.url.host}`;
    const timer = setTimeout(
      () =>
        finish(
          new CertfleetError(
            'UNREACHABLE',
            `request "${o.label}" to ${where} got no complete answer within ${o.timeoutMs} ms`,
            "check that the API answers there, or raise the connector's timeoutSeconds",
          ),
        ),
      o.timeoutMs,
    );
    const onAbort = () => finish(o.signal?.reason ?? new Error('aborted'));
    const req = httpsRequest(o.url, {
      method: o.method,
      headers: { ...o.headers, ...(o.body ? { 'content-length': String(o.body.length) } : {}) },
      ...(o.caPem ? { ca: o.caPem } : {}),
      rejectUnauthorized: true,
      agent: false,
    });
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? '';
      if (TRUST_ERRORS.has(code)) {
        finish(
          new CertfleetError(
            'REMOTE_TLS_UNTRUSTED',
            `request "${o.label}": the certificate of ${where} is not trusted (${code}: ${e.message})`,
            o.caPem
              ? "the connector's caPem does not hold the CA that issued the API's certificate (or the certificate is not for this host name): give the right CA bundle"
              : "the API's certificate does not chain to the system's trust store: give its CA as the connector's caPem (PEM)",
            { details: { tls_error: code } },
          ),
        );
      } else {
        finish(
          new CertfleetError(
            'UNREACHABLE',
            `request "${o.label}" could not reach ${where}: ${code || e.message}`,
            'check the URL, that the API runs there and that the hub may connect to it',
          ),
        );
      }
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_BODY) chunks.push(c.subarray(0, MAX_BODY - size));
        size += c.length;
      });
      res.on('end', () =>
        finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', (e) => req.emit('error', e));
    });
    req.end(o.body);
  });
}
