/**
 * What an update changes, field by field, for `apply`'s plan: `reload: "a" → "b"`, `window: added`, and a
 * separate list of the fields it removes (a field set today that the file no longer names), which apply warns
 * about because a removal is easy to make by accident.
 */
export interface FieldChanges {
  changes: string[];
  removed: string[];
}

const MAX = 80;

/** A value as one short line: strings quoted, arrays and objects as compact JSON, cut at MAX characters. */
function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > MAX ? `${text.slice(0, MAX - 1)}…` : text;
}

/** Compares the top-level fields of `before` and `after` (absent and undefined are the same). */
export function fieldChanges(before: Record<string, unknown>, after: Record<string, unknown>): FieldChanges {
  const out: FieldChanges = { changes: [], removed: [] };
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  for (const key of keys) {
    const a = before[key];
    const b = after[key];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    if (b === undefined) {
      out.changes.push(`${key}: removed (was ${show(a)})`);
      out.removed.push(key);
    } else if (a === undefined) out.changes.push(`${key}: added ${show(b)}`);
    else out.changes.push(`${key}: ${show(a)} → ${show(b)}`);
  }
  return out;
}
