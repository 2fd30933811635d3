#!/usr/bin/env node
// Loads the TypeScript CLI through tsx's loader (a runtime dependency), in this same process, so signals reach
// the hub or agent directly and the package needs no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv);
if (code !== 0 || !['hub', 'agent'].includes(process.argv[2] ?? '')) process.exitCode = code;
