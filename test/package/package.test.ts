/**
 * What `npm pack` ships: compiled JavaScript and what runs it (bin, dist, deploy units, docs, LICENSE, README),
 * never the TypeScript sources, tests or benchmarks; and dependencies that match the code: every runtime
 * dependency is imported by the shipped code, and the shipped code imports nothing else.
 * dist/ is built by scripts/run-tests.mjs before the tests run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../helpers/cli.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  license: string;
  dependencies: Record<string, string>;
  repository?: { url: string };
  bugs?: { url: string };
};

async function packedFiles(): Promise<string[]> {
  // --ignore-scripts: list what is there now, without prepack's build.
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
  });
  const [report] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
  return report.files.map((f) => f.path);
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => join(e.parentPath, e.name));
}

/** The npm package names a built file imports (static, side-effect and dynamic imports of bare specifiers). */
function packagesImportedBy(code: string): string[] {
  const names: string[] = [];
  for (const m of code.matchAll(/\b(?:from\s*|import\s*\(\s*|import\s+)["']([^"'./][^"']*)["']/g)) {
    const spec = m[1];
    if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
    const parts = spec.split('/');
    names.push(spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
  }
  return names;
}

test('the package ships the compiled CLI and what runs it, and no sources, tests or benchmarks', async () => {
  const files = await packedFiles();
  for (const required of ['bin/certfleet.js', 'dist/cli/main.js', 'LICENSE', 'README.md', 'package.json'])
    assert.ok(files.includes(required), `${required} is shipped`);
  assert.ok(
    files.some((f) => f.startsWith('deploy/') && f.endsWith('.service')),
    'the systemd unit is shipped',
  );
  const unwanted = files.filter(
    (f) => /\.(ts|mts|cts)$/.test(f) || /^(src|test|bench|scripts)\//.test(f) || f.startsWith('.'),
  );
  assert.deepEqual(unwanted, [], 'no TypeScript, sources, tests, benchmarks or build scripts');
});

test('the LICENSE file is the license package.json names, and the package says where it lives', () => {
  assert.equal(pkg.license, 'Apache-2.0');
  const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
  assert.match(license, /Apache License\s+Version 2\.0, January 2004/);
  assert.match(pkg.repository?.url ?? '', /github\.com\/certfleet\/certfleet/);
  assert.match(pkg.bugs?.url ?? '', /\/issues$/);
});

test('every runtime dependency is imported by the shipped code, which imports no other package', () => {
  const imported = new Set(
    jsFiles(join(ROOT, 'dist')).flatMap((f) => packagesImportedBy(readFileSync(f, 'utf8'))),
  );
  const declared = Object.keys(pkg.dependencies);
  assert.deepEqual(
    declared.filter((d) => !imported.has(d)),
    [],
    'runtime dependencies nothing imports (move test-only ones to devDependencies)',
  );
  assert.deepEqual(
    [...imported].filter((i) => !declared.includes(i)).sort(),
    [],
    'packages dist/ imports that are not runtime dependencies',
  );
});

test('certfleet --version prints the version in package.json', async () => {
  const r = await runCli(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), pkg.version);
});
