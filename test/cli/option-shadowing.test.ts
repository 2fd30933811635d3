/**
 * Commander hands an option to the program when the program and a command both define it, so a command option
 * spelled like a global one is silently swallowed (`check --json` once was). No command may define one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.ts';

function walk(cmd: Command, path: string[], visit: (cmd: Command, path: string[]) => void): void {
  visit(cmd, path);
  for (const sub of cmd.commands) walk(sub, [...path, sub.name()], visit);
}

test('no command option has the long flag of a global option, at any depth', async () => {
  const program = await buildProgram();
  const globals = new Set(program.options.map((o) => o.long));
  assert.ok(
    globals.has('--json') && globals.has('--ca-file'),
    'the global options are where this test looks',
  );
  const clashes: string[] = [];
  let commands = 0;
  for (const top of program.commands)
    walk(top, [top.name()], (cmd, path) => {
      commands++;
      for (const o of cmd.options)
        if (globals.has(o.long)) clashes.push(`certfleet ${path.join(' ')} ${o.long}`);
    });
  assert.ok(commands > 10, `walked ${commands} commands`);
  assert.deepEqual(clashes, []);
});
