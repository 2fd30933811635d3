/**
 * A reader for the configobj-style INI files certbot writes (renewal/<lineage>.conf): `key = value` lines,
 * `[section]` and nested `[[subsection]]` headers, `#` comments, optional quotes, and configobj's list syntax
 * (`a, b,` — a trailing comma makes a one-item list). Only what certbot writes is supported; no interpolation.
 */
export interface ConfigSection {
  values: Record<string, string | string[]>;
  sections: Record<string, ConfigSection>;
}

const emptySection = (): ConfigSection => ({ values: {}, sections: {} });

export function parseConfigObj(text: string): ConfigSection {
  const root = emptySection();
  // stack[d] is the section at nesting depth d (root = 0).
  const stack: ConfigSection[] = [root];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const header = /^(\[+)\s*(.+?)\s*(\]+)$/.exec(line);
    if (header && header[1].length === header[3].length) {
      const depth = header[1].length;
      const parent = stack[Math.min(depth - 1, stack.length - 1)];
      const section = (parent.sections[unquote(header[2])] ??= emptySection());
      stack.length = Math.min(depth, stack.length);
      stack[depth] = section;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) continue; // not something certbot writes; ignore rather than fail the whole import
    const key = unquote(line.slice(0, eq).trim());
    stack[stack.length - 1].values[key] = parseValue(line.slice(eq + 1).trim());
  }
  return root;
}

/** One value: a quoted string, a comma list, or a plain string (inline `# comments` removed when unquoted). */
function parseValue(v: string): string | string[] {
  const items: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let sawComma = false;
  let quoted = false;
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else cur += c;
    } else if (c === '"' || c === "'") {
      if (!cur.trim()) {
        quote = c;
        quoted = true;
        cur = '';
      } else cur += c;
    } else if (c === '#' && (i === 0 || /\s/.test(v[i - 1]))) {
      break;
    } else if (c === ',') {
      sawComma = true;
      items.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  const last = quoted ? cur : cur.trim();
  if (!sawComma) return last;
  if (last) items.push(last);
  return items.filter((x) => x !== '');
}

function unquote(s: string): string {
  const m = /^(["'])(.*)\1$/.exec(s);
  return m ? m[2] : s;
}

/** A value as one string (lists joined with ", "), or undefined. */
export function str(section: ConfigSection | undefined, key: string): string | undefined {
  const v = section?.values[key];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : v;
}

/** A value as a list (a plain string is a one-item list). */
export function list(section: ConfigSection | undefined, key: string): string[] {
  const v = section?.values[key];
  if (v === undefined || v === '') return [];
  return Array.isArray(v) ? v : [v];
}
