/** Types of scripts/build.mjs for the TypeScript that imports it (the benches). */
export function buildCli(options?: { outdir?: string; entryPoints?: Record<string, string> }): Promise<void>;
