/**
 * A round-robin TCP balancer on loopback, as a load balancer sits in front of several hubs. Each connection goes
 * to the next backend in turn; one that refuses (a dead hub) is skipped for the following ones, each tried once.
 * `delayMs` holds new connections before they are passed on (to keep an order in flight); `served` counts
 * connections per backend; `events` says where each connection went, for a failing test's message.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpBalancer {
  port: number;
  state: { delayMs: number; held: number; served: number[] };
  events: string[];
  close(): Promise<void>;
}

export async function startTcpBalancer(port: number, backends: number[]): Promise<TcpBalancer> {
  let next = 0;
  let seq = 0;
  const state = { delayMs: 0, held: 0, served: backends.map(() => 0) };
  const events: string[] = [];
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server = createServer((client) => {
    const id = ++seq;
    track(client);
    client.on('error', () => {}); // the peer went away: the close tears the pair down
    client.pause();
    state.held++;
    setTimeout(() => {
      state.held--;
      // this connection's own turn: concurrent connections must not make it skip a live backend or retry a dead one
      const first = next++;
      const tryBackend = (attempt: number) => {
        if (attempt >= backends.length) {
          events.push(`#${id}: no backend answered`);
          return client.destroy();
        }
        const i = (first + attempt) % backends.length;
        const upstream = connect(backends[i], '127.0.0.1');
        track(upstream);
        upstream.once('error', (e) => {
          events.push(`#${id}: backend ${i} ${e.message}`);
          tryBackend(attempt + 1);
        });
        upstream.once('connect', () => {
          events.push(`#${id}: backend ${i}`);
          state.served[i]++;
          upstream.removeAllListeners('error');
          upstream.on('error', () => client.destroy());
          client.on('close', () => upstream.destroy());
          client.pipe(upstream).pipe(client);
          client.resume();
        });
      };
      tryBackend(0);
    }, state.delayMs);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    state,
    events,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
