/**
 * What stops a process's event loop, for latency benches: the longest event-loop delay and the longest GC pause
 * since the last `take()` (a p99 is made of the answers that waited behind such stalls).
 */
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

export interface Stalls {
  /** Longest event-loop delay (ms, at 1 ms resolution). */
  loopMaxMs: number;
  /** 99th percentile of the event-loop delay samples (ms). */
  loopP99Ms: number;
  /** Longest single GC pause (ms) and all GC pauses together (ms). */
  gcMaxMs: number;
  gcTotalMs: number;
}

export function watchStalls() {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let gcMax = 0;
  let gcTotal = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMax = Math.max(gcMax, e.duration);
      gcTotal += e.duration;
    }
  });
  gc.observe({ entryTypes: ['gc'] });
  return {
    take(): Stalls {
      const s = {
        loopMaxMs: loop.max / 1e6,
        loopP99Ms: loop.percentile(99) / 1e6,
        gcMaxMs: gcMax,
        gcTotalMs: gcTotal,
      };
      loop.reset();
      gcMax = 0;
      gcTotal = 0;
      return s;
    },
  };
}
