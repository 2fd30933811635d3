/**
 * The bench's stand-in for network latency (bench/latency-relay.ts): a loopback TCP relay that holds every chunk
 * RTT/2 in each direction, keeps order, and passes half-closes and resets through. Only lower bounds on time are
 * asserted: a busy machine may add delay, never remove it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { startLatencyRelay } from '../../bench/latency-relay.ts';
import { onCleanup } from '../helpers/cleanup.ts';

/** A server that, on each connection, runs `onConnection`; listens on a free loopback port. */
async function listen(
  t: import('node:test').TestContext,
  onConnection: (s: Socket) => void,
): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(t, () => new Promise((r) => server.close(r)));
  return server;
}
const portOf = (server: Server) => (server.address() as { port: number }).port;

test('chunks arrive in the order sent, each at least RTT/2 later; a half-close passes through and the answer comes back', async (t) => {
  const rttMs = 60;
  const received: Buffer[] = [];
  let firstDataAt = 0;
  let endAt = 0;
  const target = await listen(t, (s) => {
    s.on('data', (d: Buffer) => {
      firstDataAt ||= performance.now();
      received.push(d);
    });
    // After the client's half-close the target can still answer: it echoes what it got, then ends.
    s.on('end', () => {
      endAt = performance.now();
      s.end(Buffer.concat(received));
    });
  });
  const relay = await startLatencyRelay({ targetPort: portOf(target), rttMs });
  onCleanup(t, () => relay.close());

  const client = connect({ port: relay.port, host: '127.0.0.1', allowHalfOpen: true });
  onCleanup(t, () => client.destroy());
  await once(client, 'connect');
  const answer: Buffer[] = [];
  client.on('data', (d: Buffer) => answer.push(d));
  const ended = once(client, 'end');

  const sent = Array.from({ length: 200 }, (_, i) => `chunk ${i};`);
  const firstWriteAt = performance.now();
  for (const [i, chunk] of sent.entries()) {
    client.write(chunk);
    if (i % 20 === 0) await new Promise((r) => setImmediate(r)); // separate TCP segments, interleaved with timers
  }
  const endWriteAt = performance.now();
  client.end();
  await ended;
  const answeredAt = performance.now();

  assert.equal(Buffer.concat(received).toString(), sent.join(''), 'the target got every chunk, in order');
  assert.equal(Buffer.concat(answer).toString(), sent.join(''), 'the answer came back whole, in order');
  assert.ok(firstDataAt - firstWriteAt >= rttMs / 2, `first chunk after ${firstDataAt - firstWriteAt} ms`);
  assert.ok(endAt - endWriteAt >= rttMs / 2, `the half-close arrived after ${endAt - endWriteAt} ms`);
  assert.ok(
    answeredAt - endWriteAt >= rttMs,
    `the answer's end came back after ${answeredAt - endWriteAt} ms`,
  );
});

test('a reset by the target reaches the client as a reset, not a clean end', async (t) => {
  const target = await listen(t, (s) => s.once('data', () => s.resetAndDestroy()));
  const relay = await startLatencyRelay({ targetPort: portOf(target), rttMs: 20 });
  onCleanup(t, () => relay.close());

  const client = connect({ port: relay.port, host: '127.0.0.1' });
  onCleanup(t, () => client.destroy());
  await once(client, 'connect');
  let error: NodeJS.ErrnoException | undefined;
  client.on('error', (e) => (error = e));
  client.write('hello');
  await new Promise((r) => client.once('close', r)); // not once(): it rejects on 'error'
  assert.equal(error?.code, 'ECONNRESET');
});

test('a target that refuses the connection resets the client', async (t) => {
  const gone = await listen(t, () => undefined);
  const port = portOf(gone);
  await new Promise((r) => gone.close(r));
  const relay = await startLatencyRelay({ targetPort: port, rttMs: 0 });
  onCleanup(t, () => relay.close());

  const client = connect({ port: relay.port, host: '127.0.0.1' });
  onCleanup(t, () => client.destroy());
  let error: NodeJS.ErrnoException | undefined;
  client.on('error', (e) => (error = e));
  await new Promise((r) => client.once('close', r)); // not once(): it rejects on 'error'
  assert.equal(error?.code, 'ECONNRESET');
});
