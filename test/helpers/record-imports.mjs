// `node --import ./record-imports.mjs ...` appends the URL of every module the process resolves through the ES
// module loader, one per line, to the file named by CERTFLEET_RECORD_IMPORTS: tests use it to see what a command
// loads. Plain JavaScript, so the recorded process runs without a TypeScript loader.
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

// The loader hooks run on their own thread, which loads this same file: only the main thread registers them.
if (isMainThread) register(import.meta.url);

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (process.env.CERTFLEET_RECORD_IMPORTS)
    appendFileSync(process.env.CERTFLEET_RECORD_IMPORTS, `${result.url}\n`);
  return result;
}
