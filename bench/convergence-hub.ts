/**
 * The hub for bench/convergence.ts and bench/ha.ts, in its own process (so its RSS and CPU are its own): starts a
 * real hub on a free loopback port (SQLite in the data directory, or the PostgreSQL database of a third argument;
 * hubs on one database share CERTFLEET_MASTER_KEY), prints one JSON line with url + CA, then renews certificates when the parent asks over IPC
 * and answers with the commit time (performance.timeOrigin-based, comparable across processes).
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { createLogger } from '../src/core/log.ts';
import { startHub } from '../src/hub/hub.ts';

const [dataDir, token, databaseUrl] = process.argv.slice(2);
const hub = await startHub({
  dataDir,
  listen: '127.0.0.1:0',
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
process.on('message', (msg: { renew?: string; cpu?: boolean; profile?: 'start' | 'stop'; file?: string }) => {
  if (msg.cpu) process.send!({ cpu: process.cpuUsage() });
  if (msg.profile) void profile({ profile: msg.profile, ...(msg.file ? { file: msg.file } : {}) });
  if (!msg.renew) return;
  void hub.renewal.renewNow(msg.renew, 'admin:bench').then(
    (v) => process.send!({ committedAt: performance.timeOrigin + performance.now(), versionId: v.id }),
    (e: Error) => process.send!({ error: e.message }),
  );
});
process.once('disconnect', () => void hub.close().then(() => process.exit(0)));
process.stdout.write(
  `${JSON.stringify({ url: hub.url, caPem: hub.caPem, caFingerprint: hub.caFingerprint })}\n`,
);
