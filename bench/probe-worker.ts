/** One probing thread of the probe benchmark (`--workers N`): probeMany over its share of the targets. */
import { parentPort, workerData } from 'node:worker_threads';
import type { ProbeTarget } from '../src/core/types.ts';
import { probeMany } from '../src/probe/probe-many.ts';

const { targets, roots, concurrency } = workerData as {
  targets: ProbeTarget[];
  roots: string[];
  concurrency: number;
};
// CPU is measured by the parent for the whole process (process.cpuUsage() is process-wide in a worker too)
const results = await probeMany(targets, { trustedRootPems: roots, concurrency, timeoutMs: 10_000 });
parentPort!.postMessage({ ok: results.filter((r) => r.ok).length });
