/**
 * Start-up stays cheap because commands load lazily: the command table in src/cli/main.ts names every top-level
 * command, `certfleet --help` lists them all, and neither listing commands nor a command's help loads the hub's
 * heavy packages. Checked by recording what the real binary resolves (test/helpers/record-imports.mjs), never by
 * timing (`npm run bench -- startup` measures time).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildProgram, COMMANDS } from '../../src/cli/main.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const RECORDER = join(import.meta.dirname, '..', 'helpers', 'record-imports.mjs');
/** What only running a command may load: the hub's server, store, ACME and X.509 stacks, schemas, YAML. */
const HEAVY = [
  'fastify',
  'kysely',
  'better-sqlite3',
  'acme-client',
  'pkijs',
  '@peculiar/x509',
  'pino',
  'zod',
  'yaml',
];

/** Runs the real binary and returns its result and the npm packages it resolved through the module loader. */
async function runRecorded(t: TestContext, args: string[]): Promise<{ r: CliResult; packages: Set<string> }> {
  const record = join(await tempDir(t), 'imports.txt');
  const r = await runCli(args, {
    CERTFLEET_RECORD_IMPORTS: record,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${RECORDER}`.trim(),
  });
  const urls = (await readFile(record, 'utf8')).split('\n').filter(Boolean);
  const packages = urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []);
  return { r, packages: new Set(packages) };
}

test('the command table names exactly the top-level commands the modules register', async () => {
  const program = await buildProgram();
  const registered = program.commands.map((c) => c.name());
  assert.ok(registered.length > 10, `registered: ${registered.join(' ')}`);
  assert.deepEqual([...registered].sort(), Object.keys(COMMANDS).sort());
});

test('certfleet --help lists every command', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0, r.stderr);
  const listed = [...r.stdout.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]);
  for (const name of Object.keys(COMMANDS)) assert.ok(listed.includes(name), `--help lists ${name}`);
});

for (const args of [['--help'], ['cert', 'list', '--help'], ['hub', '--help'], ['check', '--help']]) {
  test(`certfleet ${args.join(' ')} loads none of the heavy packages`, async (t) => {
    const { r, packages } = await runRecorded(t, args);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(packages.has('commander'), `the recorder saw the CLI load: ${[...packages].join(' ')}`);
    assert.deepEqual(
      HEAVY.filter((p) => packages.has(p)),
      [],
    );
  });
}

test('running a command loads what it needs: `certfleet apply` parses YAML with the schemas', async (t) => {
  const file = join(await tempDir(t), 'certfleet.yaml');
  await writeFile(file, 'certificates: [{ name: 1 }]\n');
  const { r, packages } = await runRecorded(t, ['apply', '-f', file]);
  assert.equal(r.code, 1, 'an invalid file fails before any request');
  assert.match(r.stderr, /is invalid/);
  assert.ok(packages.has('yaml') && packages.has('zod'), [...packages].join(' '));
});
