/**
 * Server-sent events for the dashboard, fed by the store's post-commit stream: each commit becomes one small
 * `change` message (what kind of thing changed, and for deployments the new state) that tells the page to fetch
 * its view again; nothing secret (no PEM, no spec) goes out. A comment line every `heartbeatMs` keeps proxies from
 * timing the stream out. Streams end when their session ends (sign-out) and when the hub closes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { StoreEvent, StoreEventStream } from '../../store/store-events.ts';
import type { SessionStore } from './session-store.ts';

export interface LiveMessage {
  kind: StoreEvent['kind'];
  certificate?: string;
  subscriptionId?: string;
  state?: string;
  from?: string | null;
  revision?: number;
  endpointId?: string;
  /** probe.recorded: every target answered with a certificate. */
  ok?: boolean;
}

export function liveMessageOf(e: StoreEvent): LiveMessage {
  switch (e.kind) {
    case 'deployment.transitioned':
      return {
        kind: e.kind,
        subscriptionId: e.deployment.subscriptionId,
        state: e.deployment.state,
        from: e.from,
      };
    case 'version.added':
    case 'certificate.changed':
    case 'renewal.failed':
      return { kind: e.kind, certificate: e.certificate.name };
    case 'probe.recorded':
      return { kind: e.kind, endpointId: e.endpointId, ok: e.results.every((r) => r.ok) };
    case 'revision.bumped':
      return { kind: e.kind, revision: e.revision };
    default:
      return { kind: e.kind };
  }
}

export class LiveStreams {
  private readonly open = new Map<FastifyReply, { sessionId: string; stop: () => void }>();

  constructor(
    private readonly events: StoreEventStream,
    sessions: SessionStore,
    private readonly heartbeatMs = 15_000,
  ) {
    sessions.onEnd((id) => {
      for (const s of [...this.open.values()]) if (s.sessionId === id) s.stop();
    });
  }

  /** Takes over the response (hooks do not run on it, so the caller passes the headers to send). */
  serve(req: FastifyRequest, reply: FastifyReply, headers: Record<string, string>): void {
    const sessionId = req.session!.id;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    const unsubscribe = this.events.onAny((e) => {
      res.write(`event: change\ndata: ${JSON.stringify(liveMessageOf(e))}\n\n`);
    });
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), this.heartbeatMs);
    heartbeat.unref();
    const stop = () => {
      if (!this.open.delete(reply)) return;
      unsubscribe();
      clearInterval(heartbeat);
      res.end();
    };
    this.open.set(reply, { sessionId, stop });
    req.raw.once('close', stop);
  }

  /** Ends every stream (hub shutdown), so closing the server does not wait for them. */
  closeAll(): void {
    for (const s of [...this.open.values()]) s.stop();
  }

  get size(): number {
    return this.open.size;
  }
}
