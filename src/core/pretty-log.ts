import { Writable } from 'node:stream';

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Keys every pino line has, shown in the line's head rather than as `key=value`. */
const HEAD_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v && typeof v === 'object' && 'message' in v && typeof (v as Error).message === 'string') {
    const e = v as { type?: string; message: string };
    return JSON.stringify(e.type ? `${e.type}: ${e.message}` : e.message);
  }
  return JSON.stringify(v);
}

/** One pino JSON line as `HH:MM:SS.mmm LEVEL message key=value …`; anything that is not JSON passes unchanged. */
export function prettyLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const level = (LEVEL_NAMES[o.level as number] ?? String(o.level)).padEnd(5);
  const fields = Object.entries(o)
    .filter(([k]) => !HEAD_KEYS.has(k))
    .map(([k, v]) => `${k}=${formatValue(v)}`);
  return [time, level, String(o.msg ?? ''), ...fields].filter(Boolean).join(' ');
}

/**
 * A destination for pino that writes human-readable lines to `out`. It formats what pino already serialised,
 * so redaction has happened before any byte gets here. No dependency: pino 10 has no built-in pretty printer
 * and these few lines are all a terminal needs.
 */
export function prettyDestination(out: { write(text: string): unknown }): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk
        .toString()
        .split('\n')
        .filter(Boolean)
        .map((l) => `${prettyLine(l)}\n`)
        .join('');
      out.write(text);
      cb();
    },
  });
}
