/**
 * Small real servers for probe tests: plain TLS, STARTTLS servers for SMTP / IMAP / POP3 (node:net, then an
 * in-place tls.TLSSocket upgrade), and a TCP server that accepts and never answers. All listen on loopback
 * port 0; close() destroys every open connection so tests never leave handles behind.
 */
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  TLSSocket,
  createSecureContext,
  createServer as createTlsServer,
  type SecureContextOptions,
} from 'node:tls';

export interface TestServer {
  port: number;
  host: string;
  close(): Promise<void>;
}

export interface TlsIdentity {
  /** Leaf PEM, or leaf followed by the chain to send. */
  certPem: string;
  keyPem: string;
  /** Intermediates sent after the leaf (omit to send the leaf alone, the "broken chain" case). */
  chainPems?: string[];
}

function track(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {}); // probes hang up abruptly on purpose
  });
  return sockets;
}

async function listen(server: Server, host: string, port = 0): Promise<TestServer> {
  const sockets = track(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    host,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function contextOptions(id: TlsIdentity): SecureContextOptions {
  return { cert: id.certPem + (id.chainPems ?? []).join(''), key: id.keyPem };
}

/**
 * A TLS server; `sni` maps server names to other identities (the default identity answers the rest); `tls` sets
 * protocol versions and ciphers (an old-protocol server).
 */
export function startTlsServer(
  id: TlsIdentity,
  opts: {
    host?: string;
    port?: number;
    sni?: Record<string, TlsIdentity>;
    tls?: Pick<SecureContextOptions, 'minVersion' | 'maxVersion' | 'ciphers'>;
  } = {},
): Promise<TestServer> {
  const contexts = new Map(
    Object.entries(opts.sni ?? {}).map(([name, other]) => [name, createSecureContext(contextOptions(other))]),
  );
  const server = createTlsServer({
    ...contextOptions(id),
    ...opts.tls,
    SNICallback: contexts.size ? (name, cb) => cb(null, contexts.get(name)) : undefined,
  });
  server.on('secureConnection', (s) => {
    s.on('error', () => {});
    s.end();
  });
  server.on('tlsClientError', () => {});
  return listen(server, opts.host ?? '127.0.0.1', opts.port);
}

/** Answers every connection with a line of plain text and hangs up: "this port does not speak TLS". */
export function startPlainTextServer(opts: { host?: string; text?: string } = {}): Promise<TestServer> {
  const text = opts.text ?? 'HTTP/1.1 400 Bad Request\r\n\r\n';
  return listen(
    createNetServer((s) => s.end(text)),
    opts.host ?? '127.0.0.1',
  );
}

/** Accepts TCP connections and never says a word: the timeout case. */
export function startSilentServer(opts: { host?: string } = {}): Promise<TestServer> {
  return listen(
    createNetServer(() => {}),
    opts.host ?? '127.0.0.1',
  );
}

export type MailProtocol = 'smtp' | 'imap' | 'pop3';

/**
 * A plain-text mail server that upgrades to TLS on STARTTLS (SMTP), "a1 STARTTLS" (IMAP) or STLS (POP3).
 * `offerStartTls: false` makes it refuse, to test the error path. SMTP replies are multi-line on purpose.
 */
export function startStartTlsServer(
  protocol: MailProtocol,
  id: TlsIdentity,
  opts: { offerStartTls?: boolean; host?: string } = {},
): Promise<TestServer> {
  const offer = opts.offerStartTls ?? true;
  const secureContext = createSecureContext(contextOptions(id));
  const server = createNetServer((socket) => {
    let buf = '';
    const upgrade = () => {
      socket.removeAllListeners('data');
      const tlsSocket = new TLSSocket(socket, { isServer: true, secureContext });
      tlsSocket.on('error', () => {});
      tlsSocket.on('secure', () => tlsSocket.end());
    };
    const reply = (line: string) => socket.write(`${line}\r\n`);
    const onLine = (line: string): boolean => {
      const cmd = line.trim();
      if (protocol === 'smtp') {
        if (/^EHLO /i.test(cmd)) {
          reply('250-test.invalid greets you');
          reply('250-PIPELINING');
          reply('250-SIZE 10240000');
          if (offer) reply('250-STARTTLS');
          reply('250 8BITMIME');
        } else if (/^STARTTLS$/i.test(cmd) && offer) {
          reply('220 2.0.0 Ready to start TLS');
          return true;
        } else if (/^QUIT$/i.test(cmd)) {
          reply('221 bye');
          socket.end();
        } else reply('502 5.5.2 command not recognized');
      } else if (protocol === 'imap') {
        const [tag = '*', verb = ''] = cmd.split(' ');
        if (/^STARTTLS$/i.test(verb) && offer) {
          reply(`${tag} OK Begin TLS negotiation now`);
          return true;
        }
        if (/^CAPABILITY$/i.test(verb)) {
          reply(`* CAPABILITY IMAP4rev1${offer ? ' STARTTLS' : ''}`);
          reply(`${tag} OK done`);
        } else reply(`${tag} BAD unknown command`);
      } else {
        if (/^STLS$/i.test(cmd) && offer) {
          reply('+OK Begin TLS negotiation');
          return true;
        }
        reply('-ERR unknown command');
      }
      return false;
    };
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (onLine(line)) return upgrade();
      }
    });
    if (protocol === 'smtp') {
      reply('220-test.invalid ESMTP test server');
      reply('220 ready');
    } else if (protocol === 'imap') reply(`* OK [CAPABILITY IMAP4rev1${offer ? ' STARTTLS' : ''}] ready`);
    else reply('+OK POP3 ready');
  });
  return listen(server, opts.host ?? '127.0.0.1');
}

/** A port that was free a moment ago and has nothing listening now (the "refused" case). */
export async function closedPort(host = '127.0.0.1'): Promise<number> {
  const s = await listen(createNetServer(), host);
  await s.close();
  return s.port;
}
