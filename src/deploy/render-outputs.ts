import { CertfleetError } from '../core/errors.ts';
import type { Bundle, OutputSpec } from '../core/types.ts';
import { renderOutput, resolvePasswordRef } from '../formats/index.ts';

/** Formats holding the private key (or a store protecting it) default to 0600; public material to 0644. */
const SECRET_FORMATS = new Set(['key', 'key-rsa', 'pkcs12', 'jks', 'combined']);

export function defaultMode(format: string): number {
  return SECRET_FORMATS.has(format) ? 0o600 : 0o644;
}

/** "0640", "640" or "0o640" → 0o640; absent → the format's default. */
export function parseMode(mode: string | undefined, format: string): number {
  if (mode === undefined || mode === '') return defaultMode(format);
  const m = /^(?:0o?)?([0-7]{3,4})$/.exec(mode.trim());
  if (!m) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `output mode "${mode}" is not an octal file mode`,
      'write the mode as an octal string such as "0640"',
    );
  }
  return parseInt(m[1], 8);
}

/** One output file, ready to write: its bytes, final mode and owner. */
export interface RenderedOutput {
  path: string;
  data: Buffer;
  mode: number;
  /** User and group names or ids; absent: the writing process's own. */
  owner?: string | number;
  group?: string | number;
  format: string;
}

/**
 * Renders every output in memory, so a bad format or password reference fails before any file is touched.
 * Passwords are resolved from their references here and never leave this function.
 */
export async function renderOutputs(
  bundle: Bundle,
  outputs: OutputSpec[],
  opts: { env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {},
): Promise<RenderedOutput[]> {
  const rendered: RenderedOutput[] = [];
  for (const spec of outputs) {
    opts.signal?.throwIfAborted();
    if (!spec.path?.startsWith('/')) {
      throw new CertfleetError(
        'CONFIG_INVALID',
        `output path "${spec.path}" is not absolute`,
        'give every output an absolute path',
      );
    }
    const needsPassword = spec.format === 'pkcs12' || spec.format === 'jks';
    if (needsPassword && !spec.passwordRef) {
      throw new CertfleetError(
        'CONFIG_INVALID',
        `output ${spec.path} (${spec.format}) has no passwordRef`,
        'set passwordRef to "env:NAME" or "file:/path"',
      );
    }
    const password =
      needsPassword && spec.passwordRef
        ? await resolvePasswordRef(spec.passwordRef, opts.env ?? process.env, opts.signal)
        : undefined;
    const data = await renderOutput(spec.format, bundle, { password, legacy: spec.legacy });
    rendered.push({
      path: spec.path,
      data,
      format: spec.format,
      mode: parseMode(spec.mode, spec.format),
      ...(spec.owner !== undefined ? { owner: spec.owner } : {}),
      ...(spec.group !== undefined ? { group: spec.group } : {}),
    });
  }
  return rendered;
}
