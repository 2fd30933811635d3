/**
 * CPU time of processes from /proc (Linux): user + system of a pid, or of a process and its direct children (a
 * PostgreSQL postmaster and its backends). Used by the benches to charge a round's CPU to each process.
 */
import { readdir, readFile } from 'node:fs/promises';

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** [ppid, utime + stime, cutime + cstime (children it reaped), in ms] of `pid`, or undefined once it is gone. */
async function stat(pid: number): Promise<[number, number, number] | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  // fields after the command name, which may hold spaces: state ppid ... utime(14) stime(15) cutime(16) cstime(17)
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return [Number(f[1]), (Number(f[11]) + Number(f[12])) * TICK_MS, (Number(f[13]) + Number(f[14])) * TICK_MS];
}

export async function cpuMsOf(pid: number): Promise<number> {
  return (await stat(pid))?.[1] ?? 0;
}

/**
 * CPU of `pid` and of its direct children: those alive now, and those it reaped (a PostgreSQL backend whose pool
 * connection closed counts too).
 */
export async function cpuMsWithChildren(pid: number): Promise<number> {
  const own = await stat(pid);
  let total = own ? own[1] + own[2] : 0;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = await stat(Number(name));
    if (s && s[0] === pid) total += s[1];
  }
  return total;
}
