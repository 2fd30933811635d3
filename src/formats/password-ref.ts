import { readFile } from 'node:fs/promises';
import { CertfleetError } from '../core/errors.ts';

/**
 * Resolves an output's passwordRef: "env:NAME" reads an environment variable, "file:/abs/path" reads a file
 * (one trailing newline removed, so `echo secret > file` works). Errors name the reference, never the secret.
 */
export async function resolvePasswordRef(
  ref: string,
  env: NodeJS.ProcessEnv = process.env,
  signal?: AbortSignal,
): Promise<string> {
  const m = /^(env|file):(.+)$/.exec(ref);
  if (!m) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      // Not echoed: a common mistake is to put the password itself where the reference belongs.
      'password reference is not of the form env:NAME or file:/path (its value is not shown)',
      'write passwordRef as "env:PKCS12_PASSWORD" or "file:/etc/certfleet/keystore.pass"',
    );
  }
  const [, kind, target] = m;
  if (kind === 'env') {
    const value = env[target];
    if (value === undefined || value === '') {
      throw new CertfleetError(
        'CONFIG_INVALID',
        `password reference "${ref}": environment variable ${target} is not set or empty`,
        `set ${target} in the agent's environment (e.g. the systemd unit's EnvironmentFile)`,
      );
    }
    return value;
  }
  if (!target.startsWith('/')) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `password reference "${ref}" must use an absolute path`,
      'write it as file:/absolute/path/to/password',
    );
  }
  let text: string;
  try {
    text = await readFile(target, { encoding: 'utf8', signal });
  } catch (e) {
    if (signal?.aborted) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new CertfleetError(
      'CONFIG_INVALID',
      `password reference "${ref}": cannot read the file (${code})`,
      'create the file, readable by the user the agent runs as (mode 0400 or 0600)',
    );
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `password reference "${ref}": the file is empty`,
      'write the password into the file',
    );
  }
  return value;
}
