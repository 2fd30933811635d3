/**
 * The hub for bench/api.ts, in its own process (the measuring client does not share its event loop): a real hub
 * (SQLite, HTTPS with its internal CA) on a free loopback port over a prepared data directory, with the planner,
 * probes and alerts off so only the measured requests run; a third argument `uncached` turns the page cache off. Prints one JSON line with url + CA; exits on disconnect.
 * On IPC it answers its CPU time, its event-loop stalls (bench/loop-stalls.ts) and runs a fleet's last-seen writes (bench/api.ts `--live`).
 */
import { createLogger } from '../src/core/log.ts';
import { hubConfigSchema } from '../src/hub/hub-config.ts';
import { startHub } from '../src/hub/hub.ts';
import { touchEvery } from './api.ts';
import { watchStalls } from './loop-stalls.ts';

const [dataDir, token, cache, wait] = process.argv.slice(2);
const hub = await startHub({
  dataDir,
  listen: '127.0.0.1:0',
  config: hubConfigSchema.parse({
    planner: { enabled: false },
    probes: { enabled: false },
    ...(cache === 'uncached' ? { api: { pageCache: false } } : {}),
  }),
  logger: createLogger({ level: 'warn' }),
  env: { CERTFLEET_ADMIN_TOKEN: token },
});
// The hub builds the dashboard's overview in the background at start (seconds at 10,000); with `wait-overview`
// (bench/api.ts) it is waited for through the overview route, so it does not share the CPU with the first route.
if (wait === 'wait-overview') await overviewBuilt();
async function overviewBuilt() {
  const signIn = await hub.app.inject({
    method: 'POST',
    url: '/ui/session',
    headers: { origin: 'http://localhost:80' },
    payload: { token },
  });
  const cookie = String(signIn.headers['set-cookie']).split(';')[0];
  await hub.app.inject({ method: 'GET', url: '/ui/api/overview?limit=1', headers: { cookie } });
}
// `{ live: MS }` starts a fleet's batched last-seen writes through this hub's store, `{ live: 0 }` stops them
let live: Awaited<ReturnType<typeof touchEvery>> | undefined;
const stalls = watchStalls();
process.on('message', (msg: { cpu?: boolean; live?: number; stalls?: boolean }) => {
  if (msg.stalls) process.send!({ stalls: stalls.take() });
  if (msg.cpu) process.send!({ cpu: process.cpuUsage(), cache: hub.app.pageCache.snapshot() });
  if (msg.live)
    void touchEvery(hub.ctx.store, msg.live).then((w) => ((live = w), process.send!({ live: true })));
  else if (msg.live === 0 && live) {
    const stopping = live;
    live = undefined;
    void stopping.stop().then((commits) => process.send!({ commits }));
  }
});
process.once('disconnect', () => void hub.close().then(() => process.exit(0)));
process.stdout.write(`${JSON.stringify({ url: hub.url, caPem: hub.caPem })}\n`);
