/** Child process of forkLatencyRelay (bench/latency-relay.ts): one relay; its port goes back over IPC. */
import { startLatencyRelay, type LatencyRelayOptions } from './latency-relay.ts';

const opts = JSON.parse(process.argv[2]) as LatencyRelayOptions;
startLatencyRelay(opts).then(
  (relay) => {
    process.send!({ port: relay.port });
    const stop = () => void relay.close().finally(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('disconnect', stop); // the bench died
  },
  (e: Error) => {
    process.send!({ error: e.message });
    process.exit(1);
  },
);
