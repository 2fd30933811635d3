/**
 * The dependency rule of docs/architecture.md, checked on every import in src/: nothing imports the CLI; the agent
 * never imports the hub and the hub never imports the agent (both use protocol/ and deploy/); protocol/ and
 * deploy/ are role-neutral, so they import neither side, nor the hub's store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve(import.meta.dirname, '../../src');

/** Top-level folders of src/ that files in `from` must not import. */
const FORBIDDEN: Record<string, string[]> = {
  hub: ['agent'],
  agent: ['hub'],
  protocol: ['agent', 'hub', 'deploy', 'connectors', 'store'],
  deploy: ['agent', 'hub', 'connectors', 'store'],
  // connectors are driven by the hub, and the hub never imports the agent
  connectors: ['agent', 'hub'],
};

interface Import {
  file: string;
  /** Top-level folder of src/ the import points into (relative imports only). */
  target: string;
  specifier: string;
}

/** Static imports, re-exports, side-effect imports and dynamic `import('...')` of relative paths. */
function importsOf(file: string, text: string): Import[] {
  const re = /\b(?:from\s*|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
  const out: Import[] = [];
  for (const m of text.matchAll(re)) {
    const path = relative(SRC, resolve(dirname(file), m[1]));
    if (path.startsWith('..')) continue;
    out.push({ file: relative(SRC, file), target: path.split('/')[0], specifier: m[1] });
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function violations(imports: Import[]): string[] {
  return imports
    .filter((i) => {
      const from = i.file.split('/')[0];
      if (i.target === 'cli') return from !== 'cli';
      return FORBIDDEN[from]?.includes(i.target) ?? false;
    })
    .map((i) => `${i.file} imports ${i.specifier}`);
}

const all = sourceFiles(SRC).flatMap((f) => importsOf(f, readFileSync(f, 'utf8')));

test('no file in src/ breaks the dependency rule', () => {
  assert.deepEqual(violations(all), []);
});

test('the scanner sees the imports the rule is about', () => {
  // hub and agent both reach the wire contract: if the scanner missed these, the rule above would prove nothing.
  const pairs = new Set(all.map((i) => `${i.file.split('/')[0]}→${i.target}`));
  for (const p of ['hub→protocol', 'agent→protocol', 'agent→deploy', 'hub→deploy', 'cli→agent'])
    assert.ok(pairs.has(p), p);
});

test('a forbidden import is reported, in every import form', () => {
  const file = join(SRC, 'hub/api/example.ts');
  const text = [
    "import { a } from '../../agent/a.ts';",
    "import type {\n  B,\n} from '../../cli/b.ts';",
    "export { c } from '../../agent/c.ts';",
    "const d = await import('../../agent/d.ts');",
    "import '../../cli/e.ts';",
    "import { ok } from '../../protocol/wire.ts';",
  ].join('\n');
  assert.deepEqual(violations(importsOf(file, text)), [
    'hub/api/example.ts imports ../../agent/a.ts',
    'hub/api/example.ts imports ../../cli/b.ts',
    'hub/api/example.ts imports ../../agent/c.ts',
    'hub/api/example.ts imports ../../agent/d.ts',
    'hub/api/example.ts imports ../../cli/e.ts',
  ]);
  const agent = join(SRC, 'agent/x.ts');
  assert.deepEqual(violations(importsOf(agent, "import { h } from '../hub/hub.ts';")), [
    'agent/x.ts imports ../hub/hub.ts',
  ]);
});
