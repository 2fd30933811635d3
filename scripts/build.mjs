// Compiles src/ into dist/ with esbuild: `node scripts/build.mjs` (npm run build) emits the CLI as ES modules, npm
// packages left as imports and every `await import()` its own chunk, so a command's heavy modules load only when it
// runs.
// esbuild only strips types (≈0.5 s); type checking stays with `tsc --noEmit` in `npm run lint`.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const common = {
  absWorkingDir: root,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  logLevel: 'warning',
};

/** The CLI: dist/cli/main.js plus shared and lazily loaded chunks in dist/chunks/. */
async function buildCli() {
  // Chunk names carry content hashes: clear the previous ones so dist/ holds exactly one build.
  await Promise.all(['cli', 'chunks'].map((d) => rm(join(dist, d), { recursive: true, force: true })));
  await build({
    ...common,
    entryPoints: { 'cli/main': 'src/cli/main.ts' },
    outdir: dist,
    bundle: true,
    splitting: true,
    packages: 'external',
    chunkNames: 'chunks/[name]-[hash]',
  });
}

const started = performance.now();
await buildCli();
const out = join(dist, 'cli', 'main.js');
const ms = (performance.now() - started).toFixed(0);
if (!process.argv.includes('--quiet'))
  process.stderr.write(`built ${out.slice(root.length + 1)} in ${ms} ms\n`);
