import { randomBytes } from 'node:crypto';
import { lstat, open, readFile, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CertfleetError, isCertfleetError } from '../core/errors.ts';
import type { PreviousFile } from '../deploy/deploy-target.ts';
import { resolveGid, resolveUid } from './owner.ts';
import { agentIds, resolveTrustedDir } from './trusted-dir.ts';

export type { PreviousFile };

/**
 * Crash-safe replacement of output files.
 *
 * One file: write a temp file beside the target (exclusive create, 0600), fsync, chown + chmod, then rename over
 * the target and fsync the directory. A reader sees the old file or the new one, never a partial one, and the
 * new file never exists with the wrong owner or mode.
 *
 * Several files (cert + key): every temp is written first, then a journal listing the pending renames is
 * committed (itself by rename), then the renames run, then the journal is removed. A crash before the journal
 * commit leaves every old file (plus temps, which recovery deletes); a crash after it is rolled forward by
 * `recoverPendingWrites`, which the agent MUST run on start, before it writes anything. So after recovery the
 * set is all old or all new.
 *
 * Between two renames a *live* reader can still see new cert + old key. Servers that read files only on reload
 * (nginx, Apache, HAProxy, Postfix) never notice: the agent reloads after `writeFilesAtomic` returns. For a
 * consumer that watches files and reloads by itself, give it a single file (`combined`, `pkcs12`, `jks`: one
 * rename), or write each generation into a new directory (`<dir>/.v-<fingerprint>/`) and switch a symlink
 * (`ln -s .v-x current.tmp && rename current.tmp current`): one rename flips the whole set.
 *
 * Contract: calls touching the same targets must not run concurrently (the agent serialises per subscription);
 * `recoverPendingWrites` must not run while writes are in flight. Targets must be regular files or absent:
 * a symlink is refused rather than silently replaced by a file.
 *
 * Who can steer a write: every target's directory is resolved from `/` by `resolveTrustedDir` (trusted-dir.ts)
 * and the write goes through the resolved path; a symlink or directory on the way that another local user
 * controls is refused before anything is written. Owner, group and mode never come from what is on disk: they
 * are what the caller asked for, else the agent's own user and group and 0600. A user who pre-creates
 * `db.key` must not become the owner of the next private key, and one rule for every output is easier to
 * reason about than "inherit, except for keys" (`restoreFiles` passes the previous owner and mode explicitly).
 */

export interface AtomicWriteOptions {
  /** File mode, e.g. 0o640. Default 0o600 (never the existing target's mode). */
  mode?: number;
  /** User name or uid. Default: the agent's own user (never the existing target's owner). */
  owner?: string | number;
  /** Group name or gid. Default: the agent's own group (never the existing target's group). */
  group?: string | number;
  signal?: AbortSignal;
}

export interface FileToWrite extends Omit<AtomicWriteOptions, 'signal'> {
  path: string;
  data: Buffer | string;
}

export interface WriteFilesOptions {
  signal?: AbortSignal;
  /** Where the journal goes; default the first file's directory. Pass it to `recoverPendingWrites` on start. */
  journalDir?: string;
  /** Called after each rename (progress logging; tests use it to crash at an exact point). */
  onRenamed?: (index: number, path: string) => void;
}

const TEMP_MARK = '.certfleet-tmp-';
const TEMP_RE = /\.certfleet-tmp-[0-9a-f]+$/;
const JOURNAL_RE = /^\.certfleet-journal-[0-9a-f]+\.json$/;

interface Rename {
  temp: string;
  target: string;
}

interface Prepared extends Rename {
  previous: PreviousFile;
}

const errnoOf = (e: unknown) => (e as NodeJS.ErrnoException)?.code;

function writeFailed(path: string, e: unknown, hint?: string): CertfleetError {
  if (isCertfleetError(e)) return e;
  const code = errnoOf(e) ?? 'error';
  const hints: Record<string, string> = {
    ENOENT: 'create the directory first (the agent does not create parent directories)',
    ENOTDIR: 'a component of the path is a file, not a directory: fix the output path',
    ELOOP: 'the path has a symlink loop: fix the output path',
    EACCES: 'give the agent write access to the directory, or run it as root',
    EPERM: 'the agent must run as root to change file ownership',
    ENOSPC: 'free disk space on that file system',
    EROFS: 'the file system is read-only: choose another path',
  };
  return new CertfleetError(
    'OUTPUT_WRITE_FAILED',
    `cannot write ${path} (${code})`,
    hint ?? hints[code] ?? 'check the output path',
    { cause: e },
  );
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (e) {
    if (errnoOf(e) !== 'EINVAL') throw e; // some file systems cannot fsync a directory; nothing more to do there
  } finally {
    await fh.close();
  }
}

function checkMode(path: string, mode: number | undefined): void {
  if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `invalid mode ${mode} for ${path}`,
      'use an octal file mode such as 0640',
    );
  }
}

async function statTarget(target: string): Promise<Stats | undefined> {
  try {
    const st = await lstat(target);
    if (!st.isFile()) {
      throw new CertfleetError(
        'OUTPUT_WRITE_FAILED',
        `${target} exists and is not a regular file`,
        st.isSymbolicLink()
          ? 'point the output at the file the symlink names, or remove the symlink'
          : 'remove it or choose another output path',
      );
    }
    return st;
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return undefined;
    throw writeFailed(target, e);
  }
}

/** Writes `data` to a fresh temp file beside `target` with its final owner and mode, durably. */
async function writeTemp(
  target: string,
  data: Buffer | string,
  meta: { mode: number; uid: number; gid: number },
  signal?: AbortSignal,
): Promise<string> {
  const temp = join(dirname(target), `.${basename(target)}${TEMP_MARK}${randomBytes(8).toString('hex')}`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(temp, 'wx', 0o600);
  } catch (e) {
    throw writeFailed(target, e);
  }
  try {
    await fh.writeFile(data, { signal });
    // chown first: it may clear setuid/setgid bits, chmod then sets exactly what was asked.
    await fh.chown(meta.uid, meta.gid);
    await fh.chmod(meta.mode);
    await fh.sync();
    await fh.close();
    fh = undefined;
    return temp;
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    if (signal?.aborted) throw signal.reason;
    throw writeFailed(target, e);
  }
}

/** Resolved (trusted) directories by directory as given, so several outputs in one directory walk it once. */
type DirCache = Map<string, string>;

/** `dir` resolved by `resolveTrustedDir`; failures name `forPath` (the output being written). */
async function trustedDir(dir: string, dirs: DirCache, forPath = dir): Promise<string> {
  let real = dirs.get(dir);
  if (real === undefined) {
    try {
      real = await resolveTrustedDir(dir);
    } catch (e) {
      throw writeFailed(forPath, e);
    }
    dirs.set(dir, real);
  }
  return real;
}

/** `path` with its directory resolved and checked: where the write really goes. */
async function trustedPath(path: string, dirs: DirCache): Promise<string> {
  return join(await trustedDir(dirname(path), dirs, path), basename(path));
}

/** Where a write to `path` really goes, after the same checks `writeFilesAtomic` makes; refusals throw. */
export function resolveOutputPath(path: string): Promise<string> {
  return trustedPath(resolve(path), new Map());
}

async function prepare(
  file: FileToWrite,
  signal: AbortSignal | undefined,
  dirs: DirCache,
): Promise<Prepared> {
  signal?.throwIfAborted();
  const path = resolve(file.path);
  checkMode(path, file.mode);
  const target = await trustedPath(path, dirs);
  const st = await statTarget(target);
  let previous: PreviousFile = { path, previous: 'absent' };
  if (st) {
    let content: Buffer;
    try {
      content = await readFile(target, { signal });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw writeFailed(target, e);
    }
    previous = { path, previous: content, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  }
  // Never from the file on disk (see the module comment).
  const self = agentIds();
  const uid = file.owner !== undefined ? await resolveUid(file.owner, signal) : self.uid;
  const gid = file.group !== undefined ? await resolveGid(file.group, signal) : self.gid;
  const mode = file.mode ?? 0o600;
  const temp = await writeTemp(target, file.data, { mode, uid, gid }, signal);
  return { target, temp, previous };
}

/** Replaces one file atomically (see the module comment). On failure the old target is untouched. */
export async function writeFileAtomic(
  path: string,
  data: Buffer | string,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const { signal, ...meta } = opts;
  const p = await prepare({ path, data, ...meta }, signal, new Map());
  try {
    signal?.throwIfAborted();
    await rename(p.temp, p.target);
  } catch (e) {
    await unlink(p.temp).catch(() => {});
    if (signal?.aborted) throw e;
    throw writeFailed(p.target, e);
  }
  await fsyncDir(dirname(p.target));
}

function uniqueDirs(paths: string[]): string[] {
  return [...new Set(paths.map((p) => dirname(p)))];
}

/** Renames temp → target in order. In recovery a missing temp means that rename already happened. */
async function applyRenames(
  renames: Rename[],
  recovering: boolean,
  onRenamed?: (index: number, path: string) => void,
): Promise<void> {
  for (const [i, r] of renames.entries()) {
    // A journal names resolved paths; on replay, its directories must still resolve to themselves, trusted.
    if (recovering) await assertResolvedTrusted(dirname(r.target));
    try {
      await rename(r.temp, r.target);
    } catch (e) {
      if (!(recovering && errnoOf(e) === 'ENOENT')) {
        throw writeFailed(
          r.target,
          e,
          'the remaining files are finished by recoverPendingWrites on agent start',
        );
      }
    }
    onRenamed?.(i, r.target);
  }
  for (const dir of uniqueDirs(renames.map((r) => r.target))) await fsyncDir(dir);
}

/** `journalDir` must be a resolved, trusted directory. */
async function commitJournal(journalDir: string, renames: Rename[]): Promise<string> {
  const journal = join(journalDir, `.certfleet-journal-${randomBytes(8).toString('hex')}.json`);
  const temp = await writeTemp(journal, JSON.stringify({ version: 1, renames }), {
    mode: 0o600,
    ...agentIds(),
  });
  try {
    await rename(temp, journal);
  } catch (e) {
    await unlink(temp).catch(() => {});
    throw writeFailed(journal, e);
  }
  await fsyncDir(dirname(journal)); // the commit point: from here on recovery rolls forward
  return journal;
}

/**
 * Replaces several files so that, after a crash and `recoverPendingWrites`, they are all old or all new.
 * Returns what each target held before, for `restoreFiles`. A failure before the commit point (unknown owner,
 * full disk, abort) removes every temp and leaves every target untouched; the signal is not honoured after it.
 */
export async function writeFilesAtomic(
  files: FileToWrite[],
  opts: WriteFilesOptions = {},
): Promise<PreviousFile[]> {
  const { signal } = opts;
  const targets = files.map((f) => resolve(f.path));
  const dup = targets.find((t, i) => targets.indexOf(t) !== i);
  if (dup)
    throw new CertfleetError('CONFIG_INVALID', `${dup} is listed twice`, 'give every output its own path');
  if (files.length === 0) return [];

  const prepared: Prepared[] = [];
  const dirs: DirCache = new Map();
  let journal: string | undefined;
  try {
    for (const f of files) prepared.push(await prepare(f, signal, dirs));
    const same = prepared.find((p, i) => prepared.findIndex((q) => q.target === p.target) !== i);
    if (same) {
      throw new CertfleetError(
        'CONFIG_INVALID',
        `${same.previous.path} is the same file as another output (${same.target}, through a symlink)`,
        'give every output its own file',
      );
    }
    // The temps' directory entries must be durable before the journal refers to them.
    for (const dir of uniqueDirs(prepared.map((p) => p.temp))) await fsyncDir(dir);
    signal?.throwIfAborted();
    if (prepared.length > 1) {
      const journalDir = opts.journalDir
        ? await trustedDir(resolve(opts.journalDir), dirs)
        : dirname(prepared[0].target);
      journal = await commitJournal(journalDir, prepared);
    }
  } catch (e) {
    await Promise.allSettled(prepared.map((p) => unlink(p.temp)));
    throw e;
  }
  await applyRenames(prepared, false, opts.onRenamed);
  if (journal) await unlink(journal);
  return prepared.map((p) => p.previous);
}

/** Puts back what `writeFilesAtomic` returned: old contents with their mode and owner; deletes files that were absent. */
export async function restoreFiles(previous: PreviousFile[], opts: WriteFilesOptions = {}): Promise<void> {
  const present = previous.filter((p): p is PreviousFile & { previous: Buffer } => p.previous !== 'absent');
  await writeFilesAtomic(
    present.map((p) => ({ path: p.path, data: p.previous, mode: p.mode, owner: p.uid, group: p.gid })),
    opts,
  );
  const dirs: DirCache = new Map();
  const removed: string[] = [];
  for (const p of previous.filter((f) => f.previous === 'absent')) {
    let target: string;
    try {
      target = await trustedPath(p.path, dirs);
    } catch (e) {
      if (errnoOf((e as Error).cause) === 'ENOENT') continue; // its directory is gone: so is the file
      throw e;
    }
    await unlink(target).catch((e) => errnoOf(e) === 'ENOENT' || Promise.reject(e));
    removed.push(target);
  }
  for (const dir of uniqueDirs(removed)) await fsyncDir(dir);
}

function parseJournal(path: string, text: string): Rename[] {
  const bad = () =>
    new CertfleetError(
      'OUTPUT_WRITE_FAILED',
      `write journal ${path} is unreadable`,
      'check the listed output files by hand, then delete the journal file',
    );
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad();
  }
  const renames = (doc as { renames?: unknown })?.renames;
  if (!Array.isArray(renames)) throw bad();
  // Only ever rename one of our own temps onto the target it was made for, whatever the journal says.
  for (const r of renames as Rename[]) {
    const ok =
      typeof r?.temp === 'string' &&
      typeof r?.target === 'string' &&
      dirname(r.temp) === dirname(r.target) &&
      basename(r.temp).startsWith(`.${basename(r.target)}${TEMP_MARK}`) &&
      TEMP_RE.test(r.temp);
    if (!ok) throw bad();
  }
  return renames as Rename[];
}

async function assertResolvedTrusted(dir: string): Promise<void> {
  let real: string;
  try {
    real = await resolveTrustedDir(dir);
  } catch (e) {
    throw writeFailed(dir, e);
  }
  if (real !== dir) {
    throw new CertfleetError(
      'OUTPUT_WRITE_FAILED',
      `write journal names ${dir}, which now resolves to ${real}`,
      'check the output files by hand, then delete the journal file',
    );
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return [];
    throw e;
  }
}

/**
 * Finishes writes interrupted by a crash: replays every committed journal found in `dirs`, then deletes leftover
 * temp files there (from writes that crashed before their commit point). Pass every output directory and every
 * journalDir in ONE call, so journals are replayed before any temp they name is swept. Run before writing.
 */
export async function recoverPendingWrites(
  dirs: string | string[],
  opts: { signal?: AbortSignal } = {},
): Promise<{ replayed: number; removedTemps: number }> {
  // Resolve and check every directory first: a refused one stops the recovery before anything is renamed.
  const list: string[] = [];
  for (const d of new Set((Array.isArray(dirs) ? dirs : [dirs]).map((x) => resolve(x)))) {
    try {
      const real = await resolveTrustedDir(d);
      if (!list.includes(real)) list.push(real);
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') continue; // nothing was ever written there
      throw writeFailed(d, e);
    }
  }
  let replayed = 0;
  let removedTemps = 0;
  for (const dir of list) {
    for (const name of (await listDir(dir)).filter((n) => JOURNAL_RE.test(n))) {
      opts.signal?.throwIfAborted();
      const journal = join(dir, name);
      await applyRenames(parseJournal(journal, await readFile(journal, 'utf8')), true);
      await unlink(journal);
      replayed++;
    }
  }
  for (const dir of list) {
    const temps = (await listDir(dir)).filter((n) => TEMP_RE.test(n));
    for (const name of temps)
      await unlink(join(dir, name)).catch((e) => errnoOf(e) === 'ENOENT' || Promise.reject(e));
    removedTemps += temps.length;
    if (temps.length) await fsyncDir(dir);
  }
  return { replayed, removedTemps };
}
