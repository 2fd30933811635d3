/**
 * The hub for bench/convergence.ts and bench/ha.ts, in its own process (so its RSS and CPU are its own): starts a
 * real hub on a free loopback port (SQLite in the data directory, or the PostgreSQL database of a third argument;
 * hubs on one database share CERTFLEET_MASTER_KEY), prints one JSON line with url + CA, then renews certificates when the parent asks over IPC
 * and answers with the commit time (performance.timeOrigin-based, comparable across processes).
 */
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
process.on('message', (msg: { renew?: string; cpu?: boolean }) => {
  if (msg.cpu) process.send!({ cpu: process.cpuUsage() });
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
