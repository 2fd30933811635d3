#!/usr/bin/env node
// Loads the TypeScript CLI through tsx's loader (a runtime dependency), in this same process, so signals reach
// the hub or agent directly and the package needs no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
// Long-running commands (hub, agent run) keep the event loop alive; the others end with this exit code.
process.exitCode = await main(process.argv);
