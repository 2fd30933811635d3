/**
 * The benches' hub processes run the code as shipped: their entry points (bench/convergence-hub.ts,
 * bench/api-hub.ts) are bundled once per bench run by scripts/build.mjs's own CLI build and forked on plain `node`,
 * so a hub's memory and CPU are what users run (through tsx an idle hub holds ~68 MB more: tsx's loader thread and
 * the transformed sources). BENCH_HUB_RUNTIME=tsx forks the TypeScript sources through tsx instead (comparisons).
 * The bundle lives in a temporary directory one level below the repository root (as dist/, so its modules find
 * ../../package.json and node_modules); it is removed when the bench process exits.
 *
 * For the hub processes only (evidence runs): BENCH_HUB_PROF=DIR writes a V8 CPU profile into DIR, BENCH_HUB_FLAGS
 * adds Node / V8 flags (`--max-semi-space-size=4`), BENCH_HUB_ENV="K=V K=V" environment (`MALLOC_ARENA_MAX=2`).
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { buildCli } from '../scripts/build.mjs';

export type HubEntry = 'convergence-hub' | 'api-hub';

const ENTRIES: HubEntry[] = ['convergence-hub', 'api-hub'];

let built: Promise<string> | undefined;

async function build(): Promise<string> {
  const outdir = await mkdtemp(join(import.meta.dirname, '..', '.bench-hub-'));
  process.once('exit', () => rmSync(outdir, { recursive: true, force: true }));
  await buildCli({
    outdir,
    entryPoints: Object.fromEntries(ENTRIES.map((e) => [`bench/${e}`, `bench/${e}.ts`])),
  });
  return outdir;
}

/** What to fork for a bench hub: the module, its node flags and its own environment variables. */
export async function hubProcess(
  entry: HubEntry,
): Promise<{ module: string; execArgv: string[]; env: NodeJS.ProcessEnv }> {
  const flags = [
    ...(process.env.BENCH_HUB_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_HUB_PROF}`] : []),
    ...(process.env.BENCH_HUB_FLAGS ?? '').split(' ').filter(Boolean),
  ];
  const pairs = (process.env.BENCH_HUB_ENV ?? '').split(' ').filter(Boolean);
  const env = Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
  if (process.env.BENCH_HUB_RUNTIME === 'tsx')
    return { module: join(import.meta.dirname, `${entry}.ts`), execArgv: ['--import', 'tsx', ...flags], env };
  built ??= build();
  return { module: join(await built, 'bench', `${entry}.js`), execArgv: flags, env };
}
