/**
 * A stand-in for network latency: a TCP relay on loopback that forwards every chunk, in each direction, RTT/2 after
 * it arrived. This VM's kernel has no netem, so benches that need a round-trip time put this in front of a server.
 * Order is kept (one queue per direction, flushed in arrival order); a half-close (`end`) travels through the same
 * queue, so it arrives after the data sent before it; an error or reset on one side resets the other at once.
 * No bandwidth limit and no backpressure: meant for small exchanges (SSH handshakes, certificates).
 */
import { fork } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export interface LatencyRelayOptions {
  /** Where accepted connections are relayed to (loopback by default). */
  targetPort: number;
  targetHost?: string;
  /** Round-trip time added: each direction waits half of it. 0 relays at once (the relay's own cost). */
  rttMs: number;
}

export interface LatencyRelay {
  port: number;
  close(): Promise<void>;
}

/** Writes `from`'s data and its end to `to`, each `delayMs` after it arrived, in arrival order. */
function forward(from: Socket, to: Socket, delayMs: number): void {
  const queue: Array<{ due: number; chunk?: Buffer }> = []; // no chunk: the end
  let timer: NodeJS.Timeout | undefined;
  const deliver = (chunk?: Buffer) => {
    if (to.destroyed) return;
    if (chunk) to.write(chunk);
    else to.end();
  };
  const flush = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length && queue[0].due <= now) deliver(queue.shift()!.chunk);
    // Timers may fire a fraction of a millisecond early: re-arm rather than deliver before the delay.
    if (queue.length) timer = setTimeout(flush, Math.max(1, Math.ceil(queue[0].due - now)));
  };
  const push = (chunk?: Buffer) => {
    if (delayMs <= 0) return deliver(chunk);
    queue.push({ due: performance.now() + delayMs, ...(chunk ? { chunk } : {}) });
    if (!timer) timer = setTimeout(flush, delayMs);
  };
  from.on('data', (chunk: Buffer) => push(chunk));
  from.on('end', () => push());
  from.on('close', () => {
    if (timer && to.destroyed) clearTimeout(timer);
  });
}

/** Starts a relay on a free loopback port. */
export async function startLatencyRelay(opts: LatencyRelayOptions): Promise<LatencyRelay> {
  const sockets = new Set<Socket>();
  const half = opts.rttMs / 2;
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({
      port: opts.targetPort,
      host: opts.targetHost ?? '127.0.0.1',
      allowHalfOpen: true,
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
    }
    // A reset or error on one side resets the other (a peer sees the connection fail, not a clean end).
    const resetOther = (other: Socket) => () => {
      if (!other.destroyed) other.resetAndDestroy();
    };
    client.on('error', resetOther(upstream));
    upstream.on('error', resetOther(client));
    forward(client, upstream, half);
    forward(upstream, client, half);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface LatencyRelayProcess extends LatencyRelay {
  /** The child's pid: its CPU is the relay's alone. */
  pid: number;
}

/** Runs a relay in a child process of its own (bench/latency-relay-process.ts), so its CPU is counted apart. */
export async function forkLatencyRelay(opts: LatencyRelayOptions): Promise<LatencyRelayProcess> {
  const child = fork(join(import.meta.dirname, 'latency-relay-process.ts'), [JSON.stringify(opts)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port?: number; error?: string }) =>
      m.port ? resolve(m.port) : reject(new Error(`latency relay: ${m.error}`)),
    );
    child.once('exit', (code) => reject(new Error(`latency relay exited (${code}) before listening`)));
  });
  return {
    port,
    pid: child.pid!,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
