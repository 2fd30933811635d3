#!/usr/bin/env node
// Runs the compiled CLI (dist/, made by `npm run build`) in this same process, so signals reach the hub or agent
// directly. No TypeScript compiler at run time.
const entry = new URL('../dist/cli/main.js', import.meta.url);
const cli = await import(entry.href).catch((e) => {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes(entry.pathname)) throw e;
  process.stderr.write('error: certfleet is not built (dist/ is missing)\nhint: run `npm run build` first\n');
  process.exit(1);
});
// Long-running commands (hub, agent run) keep the event loop alive; the others end with this exit code.
process.exitCode = await cli.main(process.argv);
