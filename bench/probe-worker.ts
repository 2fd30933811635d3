/** One probing thread of the probe benchmark (`--workers N`): probeMany over its share of the targets. */
import { parentPort, workerData } from 'node:worker_threads';
import type { ProbeTarget } from '../src/core/types.ts';
import { probeMany } from '../src/probe/probe-many.ts';

const { targets, roots, concurrency } = workerData as {
  targets: ProbeTarget[];
  roots: string[];
  concurrency: number;
};
const cpu0 = process.cpuUsage();
const results = await probeMany(targets, { trustedRootPems: roots, concurrency, timeoutMs: 10_000 });
const cpu = process.cpuUsage(cpu0);
parentPort!.postMessage({ ok: results.filter((r) => r.ok).length, cpuMs: (cpu.user + cpu.system) / 1000 });
