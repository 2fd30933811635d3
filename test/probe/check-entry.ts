// A tiny binary for the child-process tests of `certfleet check`: a commander program with only that command.
import { Command } from 'commander';
import { registerCheckCommand } from '../../src/cli/check.ts';

const program = new Command('certfleet');
registerCheckCommand(program);
await program.parseAsync(process.argv);
