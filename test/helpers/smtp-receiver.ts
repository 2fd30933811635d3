import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { makeLocalhostTls } from './localhost-tls.ts';

export interface ReceivedMail {
  from: string;
  to: string[];
  /** The authenticated user, when the client logged in. */
  user?: string;
  /** Whether the session was encrypted (STARTTLS) when DATA was sent. */
  secure: boolean;
  raw: string;
  headers: Record<string, string>;
  subject: string;
  text: string;
}

export interface SmtpReceiver {
  host: string;
  port: number;
  /** PEM of the self-signed certificate offered with STARTTLS (trust it as the CA). */
  caPem?: string;
  messages: ReceivedMail[];
  /** Reject the next `n` messages with a temporary 451 reply. */
  failNext(n: number): void;
  close(): Promise<void>;
}

/** Decodes RFC 2047 encoded words (=?utf-8?Q?...?= / ?B?) in a header value. */
function decodeWords(v: string): string {
  return v.replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=\s*/g, (_m, _cs, enc: string, data: string) =>
    enc.toUpperCase() === 'B'
      ? Buffer.from(data, 'base64').toString('utf8')
      : Buffer.from(
          data
            .replace(/_/g, ' ')
            .replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
          'latin1',
        ).toString('utf8'),
  );
}

/** Minimal single-part message parsing: headers, then the body decoded per Content-Transfer-Encoding. */
export function parseMessage(raw: string): {
  headers: Record<string, string>;
  subject: string;
  text: string;
} {
  const split = raw.indexOf('\r\n\r\n');
  const head = split >= 0 ? raw.slice(0, split) : raw;
  const body = split >= 0 ? raw.slice(split + 4) : '';
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = decodeWords(line.slice(i + 1).trim());
  }
  const cte = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  let text: string;
  if (cte === 'quoted-printable') {
    const bytes = body
      .replace(/=\r\n/g, '')
      .replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)));
    text = Buffer.from(bytes, 'latin1').toString('utf8');
  } else if (cte === 'base64') {
    text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  } else {
    text = body;
  }
  return { headers, subject: headers.subject ?? '', text: text.replace(/\r\n/g, '\n') };
}

/**
 * A real SMTP server (smtp-server) on a free loopback port. `auth` requires that login; `starttls` offers
 * STARTTLS with a fresh certificate for 127.0.0.1/localhost from a throwaway CA (`caPem` trusts it).
 */
export async function startSmtpReceiver(
  opts: { auth?: { user: string; pass: string }; starttls?: boolean } = {},
): Promise<SmtpReceiver> {
  const messages: ReceivedMail[] = [];
  let failLeft = 0;
  let tls: { key: string; cert: string; ca: string } | undefined;
  if (opts.starttls) {
    const dir = await mkdtemp(join(tmpdir(), 'certfleet-smtp-'));
    try {
      const made = await makeLocalhostTls(dir);
      tls = { key: made.keyPem, cert: made.certPem, ca: made.caPem };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const server = new SMTPServer({
    logger: false,
    // Idle pooled client connections must not hold a test's teardown for the default 30 s.
    closeTimeout: 500,
    secure: false,
    ...(tls ? { key: tls.key, cert: tls.cert } : { hideSTARTTLS: true }),
    authOptional: !opts.auth,
    allowInsecureAuth: !tls,
    disabledCommands: opts.auth ? [] : ['AUTH'],
    onAuth(auth, _session, cb) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) {
        cb(null, { user: auth.username });
      } else {
        cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      }
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (failLeft > 0) {
          failLeft--;
          cb(Object.assign(new Error('Try again later'), { responseCode: 451 }));
          return;
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        const env = session.envelope;
        messages.push({
          from: env.mailFrom ? env.mailFrom.address : '',
          to: env.rcptTo.map((r) => r.address),
          user: typeof session.user === 'string' ? session.user : undefined,
          secure: session.secure,
          raw,
          ...parseMessage(raw),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    caPem: tls?.ca,
    messages,
    failNext(n) {
      failLeft = n;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
