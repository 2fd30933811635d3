/** Dates and durations as people read them in plan messages and tables (always UTC, minute precision). */

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export { DAY_MS } from '../../core/clock.ts';

/** `2025-03-01 14:05 UTC` */
export function formatInstant(d: Date): string {
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** `3d 4h`, `2h 5m`, `45m`, `<1m`: the two largest units, for a non-negative span. */
export function formatSpan(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < MINUTE_MS) return '<1m';
  const d = Math.floor(abs / 86_400_000);
  const h = Math.floor((abs % 86_400_000) / HOUR_MS);
  const m = Math.floor((abs % HOUR_MS) / MINUTE_MS);
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`;
  return `${m}m`;
}

/** `in 3d 4h`, `now`, `2h ago` relative to `now`. */
export function formatRelative(at: Date, now: Date): string {
  const ms = at.getTime() - now.getTime();
  if (Math.abs(ms) < MINUTE_MS) return 'now';
  return ms > 0 ? `in ${formatSpan(ms)}` : `${formatSpan(ms)} ago`;
}

/** A number of days for messages: `90`, `6`, `0.5`. */
export function formatDays(ms: number): string {
  const days = ms / 86_400_000;
  return Number.isInteger(days) ? String(days) : days.toFixed(1).replace(/\.0$/, '');
}
