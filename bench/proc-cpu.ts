/**
 * CPU time of processes from /proc (Linux): user + system of a pid, or of a process and its direct children (a
 * PostgreSQL postmaster and its backends). Used by the benches to charge a round's CPU to each process.
 */
import { readdir, readFile } from 'node:fs/promises';

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** [ppid, utime + stime in ms] of `pid`, or undefined once it is gone. */
async function stat(pid: number): Promise<[number, number] | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  // fields after the command name, which may hold spaces: state ppid ... utime(14) stime(15)
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return [Number(f[1]), (Number(f[11]) + Number(f[12])) * TICK_MS];
}

export async function cpuMsOf(pid: number): Promise<number> {
  return (await stat(pid))?.[1] ?? 0;
}

/** CPU of `pid` plus its direct children alive now (children that exited in between are not counted). */
export async function cpuMsWithChildren(pid: number): Promise<number> {
  let total = await cpuMsOf(pid);
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = await stat(Number(name));
    if (s && s[0] === pid) total += s[1];
  }
  return total;
}
