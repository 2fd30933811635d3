import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { CertfleetError } from '../core/errors.ts';

/**
 * Resolves an output's owner / group to numeric ids. Numbers and digit strings are taken as ids; names are looked
 * up in /etc/passwd and /etc/group first, then through `getent` so NSS users (LDAP, sssd) work too.
 */

type Db = 'passwd' | 'group';

async function fromFile(db: Db, name: string, signal?: AbortSignal): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(`/etc/${db}`, { encoding: 'utf8', signal });
  } catch (e) {
    if (signal?.aborted) throw e;
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 3 && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  return undefined;
}

function fromGetent(db: Db, name: string, signal?: AbortSignal): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile('getent', [db, name], { encoding: 'utf8', timeout: 5000, signal }, (err, stdout) => {
      const id = err ? undefined : stdout.split(':')[2];
      resolve(id && /^\d+$/.test(id) ? Number(id) : undefined);
    });
  });
}

async function resolveId(db: Db, value: string | number, signal?: AbortSignal): Promise<number> {
  const what = db === 'passwd' ? 'user' : 'group';
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const id = Number(value);
    if (!Number.isSafeInteger(id) || id < 0 || id > 0xfffffffe) {
      throw new CertfleetError(
        'CONFIG_INVALID',
        `${what} id ${value} is out of range`,
        `use a ${what} name or id`,
      );
    }
    return id;
  }
  const id = (await fromFile(db, value, signal)) ?? (await fromGetent(db, value, signal));
  signal?.throwIfAborted();
  if (id === undefined) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `unknown ${what} "${value}" on this host`,
      db === 'passwd'
        ? `create the user (useradd --system ${value}) or change the output's owner`
        : `create the group (groupadd --system ${value}) or change the output's group`,
    );
  }
  return id;
}

export function resolveUid(user: string | number, signal?: AbortSignal): Promise<number> {
  return resolveId('passwd', user, signal);
}

/** "uid 998 (alice)" for messages; the name comes from /etc/passwd when it has one. */
export async function describeUid(uid: number): Promise<string> {
  let text = '';
  try {
    text = await readFile('/etc/passwd', 'utf8');
  } catch {
    // no name then
  }
  const name = text
    .split('\n')
    .map((line) => line.split(':'))
    .find((f) => f.length >= 3 && f[2] === String(uid))?.[0];
  return name ? `uid ${uid} (${name})` : `uid ${uid}`;
}

export function resolveGid(group: string | number, signal?: AbortSignal): Promise<number> {
  return resolveId('group', group, signal);
}
