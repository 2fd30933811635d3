import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { CertfleetError } from '../core/errors.ts';

/** A permission change made by `restrictMode`, for the warning that names it (modes as octal strings). */
export interface ModeFix {
  path: string;
  from: string;
  to: string;
}

export type OnModeFix = (fix: ModeFix) => void;

const octal = (mode: number): string => `0${(mode & 0o777).toString(8)}`;

/**
 * Gives `path` (file or directory) exactly `mode`, whatever it had before, and returns the change when one was made.
 * Missing paths are skipped, or created empty with `mode` when `create` is set (never truncated if they exist). The
 * change goes through the open descriptor (fchmod), so it applies to the very file that was checked.
 */
export async function restrictMode(
  path: string,
  mode: number,
  opts: { create?: boolean } = {},
): Promise<ModeFix | undefined> {
  let handle;
  let created = false;
  try {
    if (opts.create) {
      try {
        handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
        created = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    handle ??= await open(path, constants.O_RDONLY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const before = (await handle.stat()).mode & 0o777;
    if (before === mode) return undefined;
    await handle.chmod(mode).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPERM') throw e;
      throw new CertfleetError(
        'CONFIG_INVALID',
        `${path} has mode ${octal(before)} and this user may not change it to ${octal(mode)}`,
        `run as its owner, or fix it once: chown <hub user> ${path} && chmod ${octal(mode).slice(1)} ${path}`,
        { cause: e },
      );
    });
    // A file created just now only lost bits to the umask: nothing was too open, so nothing to report.
    return created ? undefined : { path, from: octal(before), to: octal(mode) };
  } finally {
    await handle.close();
  }
}
