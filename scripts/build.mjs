// Compiles src/ into dist/ with esbuild: `node scripts/build.mjs` (npm run build) emits the CLI as ES modules, npm
// packages left as imports and every `await import()` its own chunk, so a command's heavy modules load only when it
// runs; `--agent [--outfile F]` (npm run build:agent) emits dist/certfleet-agent.mjs, one self-contained file for
// endpoints.
// esbuild only strips types (≈0.5 s); type checking stays with `tsc --noEmit` in `npm run lint`. The benches import
// buildCli to run their hubs as shipped (bench/hub-bundle.ts).
import { build } from 'esbuild';
import { realpathSync } from 'node:fs';
import { chmod, cp, rm } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const common = {
  absWorkingDir: root,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  logLevel: 'warning',
};

/**
 * The CLI: dist/cli/main.js plus shared and lazily loaded chunks in dist/chunks/. The benches build their hub
 * entry points the same way into an `outdir` one level below the root like dist/ (modules find ../../package.json
 * and ../ui/ from their chunk).
 */
export async function buildCli({ outdir = dist, entryPoints = { 'cli/main': 'src/cli/main.ts' } } = {}) {
  // Chunk names carry content hashes: clear the previous ones so the directory holds exactly one build.
  const dirs = new Set([...Object.keys(entryPoints).map((e) => e.split('/')[0]), 'chunks']);
  await Promise.all([...dirs].map((d) => rm(join(outdir, d), { recursive: true, force: true })));
  await build({
    ...common,
    entryPoints,
    outdir,
    bundle: true,
    splitting: true,
    packages: 'external',
    chunkNames: 'chunks/[name]-[hash]',
  });
  // The dashboard's static files, read at run time from ../ui/ of whichever chunk holds the dashboard routes.
  await rm(join(outdir, 'ui'), { recursive: true, force: true });
  await cp(join(root, 'src/hub/dashboard/assets'), join(outdir, 'ui'), { recursive: true });
}

/**
 * The endpoint agent: src/cli/agent-main.ts and everything it imports, npm packages included, in one ES module.
 * Bundled CommonJS packages call require() for node: built-ins, which an ES module lacks: the banner provides it.
 */
async function buildAgent(file) {
  const outfile = resolve(file);
  const result = await build({
    ...common,
    entryPoints: ['src/cli/agent-main.ts'],
    outfile,
    bundle: true,
    minify: true,
    legalComments: 'eof',
    metafile: true,
    banner: {
      js: [
        '#!/usr/bin/env node',
        "import { createRequire as __certfleetCreateRequire } from 'node:module';",
        'const require = __certfleetCreateRequire(import.meta.url);',
      ].join('\n'),
    },
  });
  const native = Object.keys(result.metafile.inputs).filter((f) => f.endsWith('.node'));
  if (native.length > 0) throw new Error(`the agent bundle would need native modules: ${native.join(', ')}`);
  await chmod(outfile, 0o755);
  return outfile;
}

async function main() {
  const started = performance.now();
  const outfileArg = process.argv.indexOf('--outfile');
  const out = process.argv.includes('--agent')
    ? await buildAgent(outfileArg > 0 ? process.argv[outfileArg + 1] : join(dist, 'certfleet-agent.mjs'))
    : (await buildCli(), join(dist, 'cli', 'main.js'));
  const ms = (performance.now() - started).toFixed(0);
  if (!process.argv.includes('--quiet'))
    process.stderr.write(`built ${relative(process.cwd(), out)} in ${ms} ms\n`);
}

// run as a script (node scripts/build.mjs), not when imported
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
