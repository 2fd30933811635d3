/**
 * Benchmark dispatcher: `npm run bench -- <name> [args]` imports bench/<name>.ts and calls its `run(args)`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [name, ...args] = process.argv.slice(2);
if (!name || !/^[a-z0-9-]+$/.test(name) || !existsSync(join(import.meta.dirname, `${name}.ts`))) {
  process.stderr.write(
    `usage: npm run bench -- <name> [args]   (name: a file bench/<name>.ts, e.g. issuance, probe)\n`,
  );
  process.exit(2);
}
const mod = (await import(pathToFileURL(join(import.meta.dirname, `${name}.ts`)).href)) as {
  run?: (args: string[]) => Promise<void>;
};
if (typeof mod.run !== 'function') {
  process.stderr.write(`bench/${name}.ts exports no run(args)\n`);
  process.exit(2);
}
await mod.run(args);
process.exit(0);
