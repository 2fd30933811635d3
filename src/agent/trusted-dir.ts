import { lstat, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { CertfleetError } from '../core/errors.ts';
import { describeUid } from './owner.ts';

/**
 * Resolves the directory an output goes into, from `/`, one component at a time with lstat, and refuses a path
 * that another local user could steer. The agent usually runs as root: without this, a user who owns a symlink
 * or a directory on the way could redirect a private key to a place they read, or swap the directory between
 * the check and the write.
 *
 * "Trusted" means root or the agent's own uid (and, for groups, gid 0 or the agent's own gid). Refused:
 * - a symlink owned by anyone else (a root-owned symlink, e.g. Debian's /etc/ssl/certs style, is followed, and
 *   the path it names is checked the same way);
 * - a directory on the resolved path owned by anyone else;
 * - a directory writable by others: group-writable with an untrusted group (we cannot tell who its members are,
 *   so we do not guess), or world-writable; unless the sticky bit is set (like /tmp): then others cannot rename
 *   or delete entries they do not own, and the next component's owner is checked anyway.
 *
 * What this covers, and what not: every property checked holds until root or the agent changes it (no other
 * user can rename entries in, or chmod/chown, a directory that passed), so the resolved path cannot be swapped
 * under the write by another user afterwards; the check-then-use gap is closed by the rule itself, not by file
 * descriptors (Node has no openat/renameat). Not covered: root or the agent's own user changing the path
 * concurrently, and bind mounts (which only root can make).
 *
 * Returns the resolved directory (symlinks replaced by their targets); write through it, not the given path.
 */

export interface TrustedIds {
  uid: number;
  gid: number;
}

/** The agent's own ids: the only ones besides root that may control a directory it writes into. */
export function agentIds(): TrustedIds {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

const MAX_SYMLINKS = 40; // as Linux's ELOOP limit

function refused(path: string, why: string, hint: string): CertfleetError {
  return new CertfleetError('OUTPUT_WRITE_FAILED', `refusing to write under ${path}: ${why}`, hint, {
    details: { path },
  });
}

async function checkDirectory(path: string, st: Stats, ids: TrustedIds): Promise<void> {
  const fix = 'or choose a directory only root (or the agent) can write';
  if (st.uid !== 0 && st.uid !== ids.uid) {
    throw refused(
      path,
      `it is owned by ${await describeUid(st.uid)}, who could swap it for a link to anywhere`,
      `chown root: ${path} (and make it writable only by root), ${fix}`,
    );
  }
  if (st.mode & 0o1000) return; // sticky: others may add entries but not rename or remove ours
  if (st.mode & 0o002) {
    throw refused(path, 'it is writable by every user', `chmod o-w ${path}, ${fix}`);
  }
  if (st.mode & 0o020 && st.gid !== 0 && st.gid !== ids.gid) {
    throw refused(
      path,
      `it is writable by group ${st.gid}, whose members could replace what the agent writes`,
      `chmod g-w ${path} (or chgrp root ${path}), ${fix}`,
    );
  }
}

/**
 * Walks `dir` from `/` (see the module comment). Filesystem errors (ENOENT, ENOTDIR, ELOOP, EACCES) are thrown
 * as they are, for the caller to name the output; refusals are OUTPUT_WRITE_FAILED errors naming the component.
 */
export async function resolveTrustedDir(dir: string, ids: TrustedIds = agentIds()): Promise<string> {
  const pending = resolve(dir).split('/').filter(Boolean);
  let current = '/';
  await checkDirectory(current, await lstat(current), ids);
  let links = 0;
  while (pending.length) {
    const name = pending.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      current = resolve(current, '..');
      continue;
    }
    const next = join(current, name);
    const st = await lstat(next);
    if (st.isSymbolicLink()) {
      if (st.uid !== 0 && st.uid !== ids.uid) {
        throw refused(
          next,
          `it is a symlink owned by ${await describeUid(st.uid)}, who could point it anywhere`,
          `replace it with a symlink owned by root (chown -h root ${next}), or point the output at the real directory`,
        );
      }
      if (++links > MAX_SYMLINKS) throw Object.assign(new Error('too many symlinks'), { code: 'ELOOP' });
      const target = await readlink(next);
      if (target.startsWith('/')) current = '/';
      pending.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    if (!st.isDirectory()) throw Object.assign(new Error(`${next} is not a directory`), { code: 'ENOTDIR' });
    await checkDirectory(next, st, ids);
    current = next;
  }
  return current;
}
