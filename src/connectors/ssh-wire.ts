import { CertfleetError } from '../core/errors.ts';
import type { PreviousFile } from '../deploy/deploy-target.ts';

/**
 * The byte formats of the forced command's batched requests (deploy/certfleet-ssh-forced-command.sh): the stdin
 * of `put` and the answer of `read`. The script handles both with shell builtins only (`read`, `printf`), so a
 * deploy costs the host as few processes as possible.
 */

/** One file for `put`: where, with which mode and owner (`-`: leave as the deploy user makes it). */
export interface PutFile {
  path: string;
  data: Buffer;
  mode: number;
  owner?: string | number;
  group?: string | number;
}

/** Longest `d` line: well under any shell's line limits, long enough that a PEM file is one or two lines. */
const LINE_CHARS = 4000;

/**
 * Per byte, what stands for it in a printf format: printable ASCII as itself, everything else (and `\`, `%`, and
 * `-`, which could start an option) as a three-digit octal escape, which every POSIX printf turns back into it.
 */
const TOKENS: string[] = Array.from({ length: 256 }, (_, b) =>
  b >= 0x20 && b < 0x7f && b !== 0x5c && b !== 0x25 && b !== 0x2d
    ? String.fromCharCode(b)
    : `\\${b.toString(8).padStart(3, '0')}`,
);

/** The `d` lines of one file's bytes; a line never splits an escape. */
function dataLines(data: Buffer): string[] {
  const lines: string[] = [];
  let line = '';
  for (const b of data) {
    const t = TOKENS[b];
    if (line.length + t.length > LINE_CHARS) {
      lines.push(`d ${line}\n`);
      line = '';
    }
    line += t;
  }
  if (line) lines.push(`d ${line}\n`);
  return lines;
}

/** stdin of `put`: per file a `file PATH MODE OWNER GROUP` line and its `d` lines; `end` last. */
export function encodePut(files: PutFile[]): Buffer {
  const parts: string[] = [];
  for (const f of files) {
    const mode = (f.mode & 0o7777).toString(8).padStart(3, '0');
    parts.push(`file ${remotePath(f.path)} ${mode} ${ownerWord(f.owner)} ${ownerWord(f.group)}\n`);
    parts.push(...dataLines(f.data));
  }
  parts.push('end\n');
  return Buffer.from(parts.join(''), 'latin1');
}

/**
 * The answer of `read PATH...`: one line per path (`absent PATH` or `MODE UID GID SIZE PATH`), then the bytes of
 * the present files in the order of their lines. A file that changed size between the two is an error (read again).
 */
export function parseRead(paths: string[], out: Buffer): PreviousFile[] {
  const bad = (why: string) =>
    new CertfleetError(
      'OUTPUT_WRITE_FAILED',
      `reading ${paths.join(', ')}: ${why}`,
      'install the deploy/certfleet-ssh-forced-command.sh of this certfleet version as the forced command of the deploy key (docs/connectors.md)',
    );
  const heads = new Map<string, { mode: number; uid: number; gid: number; size: number } | 'absent'>();
  const order: string[] = [];
  let at = 0;
  for (let i = 0; i < paths.length; i++) {
    const nl = out.indexOf(0x0a, at);
    if (nl < 0) throw bad(`the host's answer is not the forced command's (${paths.length} lines expected)`);
    const line = out.subarray(at, nl).toString('latin1');
    at = nl + 1;
    const absent = /^absent (\S+)$/.exec(line);
    const stat = /^([0-7]{3,4}) (\d+) (\d+) (\d+) (\S+)$/.exec(line);
    if (absent) heads.set(absent[1], 'absent');
    else if (stat) {
      heads.set(stat[5], {
        mode: parseInt(stat[1], 8),
        uid: Number(stat[2]),
        gid: Number(stat[3]),
        size: Number(stat[4]),
      });
      order.push(stat[5]);
    } else throw bad(`the host's answer is not the forced command's (${JSON.stringify(line.slice(0, 60))})`);
  }
  const data = new Map<string, Buffer>();
  for (const path of order) {
    const h = heads.get(path) as { size: number };
    if (at + h.size > out.length)
      throw bad(`${path} changed while it was read; the next deploy reads it again`);
    data.set(path, out.subarray(at, at + h.size));
    at += h.size;
  }
  if (at !== out.length) throw bad('a file changed while it was read; the next deploy reads it again');
  return paths.map((path) => {
    const h = heads.get(path);
    if (!h) throw bad(`no answer for ${path}`);
    if (h === 'absent') return { path, previous: 'absent' };
    return { path, previous: data.get(path)!, mode: h.mode, uid: h.uid, gid: h.gid };
  });
}

/** The forced command splits its requests on spaces: a path must be absolute and hold none. */
export function remotePath(path: string): string {
  if (!path.startsWith('/') || /[\s'"\\$`;&|<>*?]/.test(path)) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `output path "${path}" cannot be sent to an ssh connector endpoint`,
      'use absolute paths without spaces, quotes or shell characters for ssh endpoints',
    );
  }
  return path;
}

function ownerWord(v: string | number | undefined): string {
  if (v === undefined || v === '') return '-';
  const s = String(v);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(s)) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `owner or group "${s}" is not a user or group name`,
      'use a plain name or number',
    );
  }
  return s;
}
