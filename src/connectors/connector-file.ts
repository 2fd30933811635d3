import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { commandConnectorSchema, sshConnectorSchema } from './connector-config.ts';
import { httpConnectorSchema } from './http-settings.ts';

/**
 * A connector as written in a `certfleet apply` file: the settings, with every secret given by reference and
 * read by the CLI (never written in the file): the ssh key as `keyFile`, an http connector's secrets as
 * `{env: NAME}` or `{file: PATH}`, its CA bundle as `caFile` (or `caPem`). Relative paths are relative to the file.
 */
const secretRef = z.union([
  z.strictObject({
    env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'),
  }),
  z.strictObject({ file: z.string().min(1) }),
]);

export const connectorFileSchema = z.discriminatedUnion('kind', [
  sshConnectorSchema.extend({ keyFile: z.string().min(1) }),
  commandConnectorSchema,
  httpConnectorSchema.safeExtend({
    secrets: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a secret name'), secretRef)
      .default({}),
    caFile: z.string().min(1).optional(),
  }),
]);

export interface ResolvedConnector {
  /** The body of PUT /endpoints/NAME/connector: secrets in clear (sent to the hub over TLS, sealed there). */
  input?: Record<string, unknown>;
  /** `path: message`, path relative to the connector (`upload[0].url`, `secrets.api_token`). */
  problems: Array<{ path: PropertyKey[]; message: string }>;
}

/** Validates a connector from a file and reads what it references. */
export async function resolveConnectorFile(
  raw: unknown,
  opts: { baseDir: string; env: NodeJS.ProcessEnv },
): Promise<ResolvedConnector> {
  const parsed = connectorFileSchema.safeParse(raw);
  if (!parsed.success)
    return { problems: parsed.error.issues.map((i) => ({ path: i.path, message: i.message })) };
  const problems: ResolvedConnector['problems'] = [];
  const read = async (path: string, at: PropertyKey[]): Promise<string | undefined> => {
    const full = isAbsolute(path) ? path : resolve(opts.baseDir, path);
    try {
      return await readFile(full, 'utf8');
    } catch {
      problems.push({ path: at, message: `cannot read ${full}` });
      return undefined;
    }
  };
  const spec = parsed.data;
  if (spec.kind === 'command') return { input: spec, problems };
  if (spec.kind === 'ssh') {
    const { keyFile, ...rest } = spec;
    const privateKey = await read(keyFile, ['keyFile']);
    return { input: { ...rest, privateKey }, problems };
  }
  const { secrets: refs, caFile, ...rest } = spec;
  const secrets: Record<string, string> = {};
  for (const [name, ref] of Object.entries(refs)) {
    if ('env' in ref) {
      const v = opts.env[ref.env];
      if (v) secrets[name] = v;
      else problems.push({ path: ['secrets', name], message: `environment variable ${ref.env} is not set` });
    } else {
      const v = await read(ref.file, ['secrets', name, 'file']);
      if (v !== undefined) secrets[name] = v.replace(/\r?\n$/, '');
    }
  }
  const caPem = caFile ? await read(caFile, ['caFile']) : rest.caPem;
  return { input: { ...rest, ...(caPem ? { caPem } : {}), secrets }, problems };
}
