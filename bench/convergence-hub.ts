/**
 * The hub for bench/convergence.ts and bench/ha.ts, in its own process (so its RSS and CPU are its own): starts a
 * real hub on a free loopback port (SQLite in the data directory, or the PostgreSQL database of a third argument;
 * hubs on one database share CERTFLEET_MASTER_KEY; plain HTTP with CERTFLEET_TLS=off), prints one JSON line with url + CA, then renews certificates when the parent asks over IPC
 * and answers with the commit time (performance.timeOrigin-based, comparable across processes).
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createLogger } from '../src/core/log.ts';
import { startHub } from '../src/hub/hub.ts';

const [dataDir, token, databaseUrl] = process.argv.slice(2);
const hub = await startHub({
  dataDir,
  listen: '127.0.0.1:0',
  // CERTFLEET_TLS=off (as `certfleet hub` reads it): plain HTTP behind a TLS-terminating proxy (bench ha --front)
  tls: process.env.CERTFLEET_TLS !== 'off',
  logger: createLogger({ level: 'warn' }),
  env: {
    CERTFLEET_ADMIN_TOKEN: token,
    ...(process.env.CERTFLEET_MASTER_KEY ? { CERTFLEET_MASTER_KEY: process.env.CERTFLEET_MASTER_KEY } : {}),
  },
  ...(databaseUrl ? { databaseUrl } : {}),
});
// `{profile: 'start'}` / `{profile: 'stop', file}`: a V8 CPU profile of this hub over one round only
let profiler: Session | undefined;
async function profile(msg: { profile: 'start' | 'stop'; file?: string }): Promise<void> {
  if (msg.profile === 'start') {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  } else if (profiler) {
    const { profile } = await profiler.post('Profiler.stop');
    profiler.disconnect();
    profiler = undefined;
    if (msg.file) await writeFile(msg.file, JSON.stringify(profile));
  }
  process.send!({ profiled: msg.profile });
}
// Connections, TLS handshakes (and how many resumed a session) and requests since the start: `{traffic: true}`.
const traffic = { connections: 0, handshakes: 0, resumed: 0, requests: 0, open: 0 };
hub.app.server.on('connection', (socket: import('node:net').Socket) => {
  traffic.connections++;
  traffic.open++;
  socket.once('close', () => traffic.open--);
});
hub.app.server.on('secureConnection', (socket: import('node:tls').TLSSocket) => {
  traffic.handshakes++;
  if (socket.isSessionReused()) traffic.resumed++;
});
hub.app.server.on('request', () => traffic.requests++);
// `{sample: 'start'}` / `{sample: 'stop'}`: memoryUsage() every 100 ms without forcing a GC (what the process
// really holds at the renewal's peak, garbage included); answers the sample with the highest RSS and each maximum.
let sampler: { timer: NodeJS.Timeout; atPeak: NodeJS.MemoryUsage; max: NodeJS.MemoryUsage } | undefined;
function sample(cmd: 'start' | 'stop'): void {
  if (cmd === 'start') {
    const first = process.memoryUsage();
    const s = { atPeak: first, max: { ...first }, timer: setInterval(() => take(s), 100) };
    sampler = s;
    return;
  }
  if (!sampler) return;
  clearInterval(sampler.timer);
  take(sampler);
  process.send!({ sample: { atPeak: sampler.atPeak, max: sampler.max } });
  sampler = undefined;
}
function take(s: { atPeak: NodeJS.MemoryUsage; max: NodeJS.MemoryUsage }): void {
  const m = process.memoryUsage();
  if (m.rss > s.atPeak.rss) s.atPeak = m;
  for (const k of Object.keys(m) as Array<keyof NodeJS.MemoryUsage>) s.max[k] = Math.max(s.max[k], m[k]);
}
// `{memory: true}`: memoryUsage() after a full GC (bench/parked-agents.ts); `{heapSnapshot: file}` writes one
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
process.on(
  'message',
  (msg: {
    renew?: string;
    cpu?: boolean;
    memory?: boolean;
    traffic?: boolean;
    heapSnapshot?: string;
    profile?: 'start' | 'stop';
    sample?: 'start' | 'stop';
    file?: string;
  }) => {
    if (msg.sample) sample(msg.sample);
    if (msg.cpu) process.send!({ cpu: process.cpuUsage() });
    if (msg.traffic) process.send!({ traffic: { ...traffic } });
    if (msg.memory) {
      gc();
      process.send!({ memory: process.memoryUsage() });
    }
    if (msg.heapSnapshot) process.send!({ heapSnapshot: writeHeapSnapshot(msg.heapSnapshot) });
    if (msg.profile) void profile({ profile: msg.profile, ...(msg.file ? { file: msg.file } : {}) });
    if (!msg.renew) return;
    void hub.renewal.renewNow(msg.renew, 'admin:bench').then(
      (v) => process.send!({ committedAt: performance.timeOrigin + performance.now(), versionId: v.id }),
      (e: Error) => process.send!({ error: e.message }),
    );
  },
);
process.once('disconnect', () => void hub.close().then(() => process.exit(0)));
process.stdout.write(
  `${JSON.stringify({ url: hub.url, caPem: hub.caPem, caFingerprint: hub.caFingerprint })}\n`,
);
