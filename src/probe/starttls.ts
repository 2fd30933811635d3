/**
 * STARTTLS negotiation on a plain TCP socket for SMTP (RFC 3207), IMAP (RFC 2595 / 9051) and POP3 (RFC 2595),
 * leaving the socket ready for a TLS handshake. Replies are read line by line; SMTP multi-line replies
 * ("250-...", then "250 ...") are read whole.
 */
import type { Socket } from 'node:net';

export type StartTlsProtocol = 'smtp' | 'imap' | 'pop3';
export const STARTTLS_PROTOCOLS: readonly StartTlsProtocol[] = ['smtp', 'imap', 'pop3'];

/** A STARTTLS exchange failed; `message` says what the server answered and what to do. */
export class StartTlsError extends Error {
  override name = 'StartTlsError';
}

const MAX_LINE = 8192;
const MAX_LINES = 200;

/** Reads CRLF (or LF) terminated lines from a socket until it is released. */
class LineReader {
  private buf = '';
  private lines: string[] = [];
  private waiter?: { resolve: (l: string) => void; reject: (e: Error) => void };
  private failure?: Error;
  private released = false;
  private readonly onData = (d: Buffer) => {
    this.buf += d.toString('latin1');
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      this.lines.push(this.buf.slice(0, i).replace(/\r$/, ''));
      this.buf = this.buf.slice(i + 1);
    }
    if (this.buf.length > MAX_LINE) this.fail(new StartTlsError('server sent an over-long line'));
    this.flush();
  };
  private readonly onEnd = () => this.fail(new StartTlsError('server closed the connection during STARTTLS'));
  private readonly onError = (e: Error) => this.fail(e);

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.flush();
  }

  private flush(): void {
    if (!this.waiter) return;
    const w = this.waiter;
    if (this.lines.length > 0) {
      this.waiter = undefined;
      w.resolve(this.lines.shift()!);
    } else if (this.failure) {
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }

  next(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.flush();
    });
  }

  /** Stops reading so the TLS layer gets every byte after this point; returns what was read but not used. */
  release(): string {
    if (this.released) return '';
    this.released = true;
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.pause();
    return this.buf + this.lines.join('\n');
  }
}

/** One SMTP reply: all lines of a multi-line reply, and its code. */
async function smtpReply(r: LineReader): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  for (;;) {
    const line = await r.next();
    lines.push(line);
    const m = /^(\d{3})([ -]|$)/.exec(line);
    if (!m) throw new StartTlsError(`server did not answer like an SMTP server ("${clip(line)}")`);
    if (m[2] !== '-') return { code: Number(m[1]), lines };
    if (lines.length > MAX_LINES) throw new StartTlsError('SMTP reply too long');
  }
}

function clip(s: string): string {
  return s.length > 120 ? `${s.slice(0, 120)}…` : s;
}

function send(socket: Socket, line: string): void {
  socket.write(`${line}\r\n`);
}

async function smtp(socket: Socket, r: LineReader, ehloName: string): Promise<void> {
  const greeting = await smtpReply(r);
  if (greeting.code !== 220)
    throw new StartTlsError(`SMTP server refused the session: "${clip(greeting.lines.join(' '))}"`);
  send(socket, `EHLO ${ehloName}`);
  const ehlo = await smtpReply(r);
  if (ehlo.code !== 250)
    throw new StartTlsError(`SMTP server rejected EHLO: "${clip(ehlo.lines.join(' '))}"`);
  const offers = ehlo.lines.some((l) => /^250[ -]STARTTLS\b/i.test(l));
  if (!offers)
    throw new StartTlsError(
      'SMTP server does not offer STARTTLS in its EHLO reply: enable STARTTLS on the server ' +
        '(e.g. postfix smtpd_tls_security_level=may with a certificate), or probe the implicit-TLS port (465) without --starttls',
    );
  send(socket, 'STARTTLS');
  const ready = await smtpReply(r);
  if (ready.code !== 220)
    throw new StartTlsError(`SMTP server answered STARTTLS with "${clip(ready.lines.join(' '))}"`);
}

async function imap(socket: Socket, r: LineReader): Promise<void> {
  const greeting = await r.next();
  if (!/^\* (OK|PREAUTH)\b/i.test(greeting))
    throw new StartTlsError(`IMAP server did not greet with "* OK" ("${clip(greeting)}")`);
  send(socket, 'a1 STARTTLS');
  for (let i = 0; i < MAX_LINES; i++) {
    const line = await r.next();
    if (line.startsWith('* ')) continue; // untagged data (e.g. CAPABILITY) before the tagged answer
    const m = /^a1 (OK|NO|BAD)\b/i.exec(line);
    if (!m) throw new StartTlsError(`IMAP server answered STARTTLS with "${clip(line)}"`);
    if (m[1].toUpperCase() === 'OK') return;
    throw new StartTlsError(
      `IMAP server does not offer STARTTLS ("${clip(line)}"): enable STARTTLS on the server, ` +
        'or probe the implicit-TLS port (993) without --starttls',
    );
  }
  throw new StartTlsError('IMAP server sent no tagged answer to STARTTLS');
}

async function pop3(socket: Socket, r: LineReader): Promise<void> {
  const greeting = await r.next();
  if (!/^\+OK\b/i.test(greeting))
    throw new StartTlsError(`POP3 server did not greet with "+OK" ("${clip(greeting)}")`);
  send(socket, 'STLS');
  const answer = await r.next();
  if (/^\+OK\b/i.test(answer)) return;
  throw new StartTlsError(
    `POP3 server does not offer STLS ("${clip(answer)}"): enable STLS on the server, ` +
      'or probe the implicit-TLS port (995) without --starttls',
  );
}

/**
 * Runs the protocol's plain-text preamble up to the point where the server expects a TLS ClientHello.
 * The caller owns the socket's lifetime and timeout; an abort destroys the socket, which rejects here.
 */
export async function negotiateStartTls(
  socket: Socket,
  protocol: StartTlsProtocol,
  opts: { ehloName?: string } = {},
): Promise<void> {
  const r = new LineReader(socket);
  try {
    if (protocol === 'smtp') await smtp(socket, r, opts.ehloName ?? 'certfleet-probe.invalid');
    else if (protocol === 'imap') await imap(socket, r);
    else if (protocol === 'pop3') await pop3(socket, r);
    else throw new StartTlsError(`unknown STARTTLS protocol "${String(protocol)}": use smtp, imap or pop3`);
    // Plain-text bytes after the go-ahead would be mistaken for TLS (the classic STARTTLS injection).
    if (r.release().length > 0)
      throw new StartTlsError(
        'server sent plain-text data after agreeing to STARTTLS; its STARTTLS is broken',
      );
  } finally {
    r.release();
  }
}
