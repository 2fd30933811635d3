import { CertfleetError } from '../core/errors.ts';

/**
 * The placeholder syntax of http connector requests: `{{name}}`, `{{cert_pem}}`, `{{secret:api_token}}`. No
 * expressions, no eval: a placeholder is looked up by name and replaced by its text, escaped for where it stands
 * (URL-encoded in a URL, a JSON string value in a JSON body, as is in a text body or a header). An unknown name is
 * a configuration error naming it.
 */
export const BUNDLE_PLACEHOLDERS = {
  cert_pem: 'the leaf certificate, PEM (needs an output of format cert)',
  chain_pem: 'the intermediates, PEM (needs an output of format chain)',
  fullchain_pem: 'leaf + intermediates, PEM (needs an output of format fullchain)',
  key_pem: 'the private key, PEM (needs an output of format key)',
  pfx_base64: 'the PKCS#12 file, base64 (needs an output of format pkcs12)',
} as const;
export const CONTEXT_PLACEHOLDERS = {
  name: 'the certificate name',
  fingerprint: "the leaf's SHA-256 fingerprint (hex)",
  fingerprint_short: 'the first 12 hex digits of the fingerprint (a unique object name per version)',
} as const;

export type BundlePlaceholder = keyof typeof BUNDLE_PLACEHOLDERS;
export type Placeholder = BundlePlaceholder | keyof typeof CONTEXT_PLACEHOLDERS | `secret:${string}`;

/** The output format each bundle placeholder is taken from, and how its bytes become text. */
export const PLACEHOLDER_FORMAT: Record<BundlePlaceholder, { format: string; encoding: 'utf8' | 'base64' }> =
  {
    cert_pem: { format: 'cert', encoding: 'utf8' },
    chain_pem: { format: 'chain', encoding: 'utf8' },
    fullchain_pem: { format: 'fullchain', encoding: 'utf8' },
    key_pem: { format: 'key', encoding: 'utf8' },
    pfx_base64: { format: 'pkcs12', encoding: 'base64' },
  };

const PLACEHOLDER_RE = /\{\{\s*([^{}]*?)\s*\}\}/g;
const SECRET_NAME_RE = /^secret:([A-Za-z_][A-Za-z0-9_]{0,63})$/;

/** Why `name` is not a placeholder, or undefined when it is one. */
export function placeholderProblem(name: string): string | undefined {
  if (name in BUNDLE_PLACEHOLDERS || name in CONTEXT_PLACEHOLDERS || SECRET_NAME_RE.test(name))
    return undefined;
  if (name.startsWith('secret:'))
    return `"{{${name}}}" is not a secret reference: use {{secret:NAME}} (letters, digits, _)`;
  const known = [...Object.keys(BUNDLE_PLACEHOLDERS), ...Object.keys(CONTEXT_PLACEHOLDERS), 'secret:NAME'];
  return `unknown placeholder "{{${name}}}"; known: ${known.map((k) => `{{${k}}}`).join(', ')}`;
}

/** Every placeholder in a template string, in order. */
export function placeholdersIn(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER_RE)].map((m) => m[1]);
}

/** Every string inside a JSON template (object keys are not templated). */
export function jsonStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(jsonStrings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(jsonStrings);
  return [];
}

/** The secret a placeholder references, or undefined. */
export function secretName(placeholder: string): string | undefined {
  return SECRET_NAME_RE.exec(placeholder)?.[1];
}

export type Values = (placeholder: string) => string;

/** Replaces each placeholder by its value passed through `escape`. */
export function fill(template: string, values: Values, escape: (s: string) => string = (s) => s): string {
  return template.replace(PLACEHOLDER_RE, (_m, name: string) => escape(values(name)));
}

/** A JSON template with every string filled; JSON.stringify escapes the values, so a PEM stays one string. */
export function fillJson(value: unknown, values: Values): unknown {
  if (typeof value === 'string') return fill(value, values);
  if (Array.isArray(value)) return value.map((v) => fillJson(v, values));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillJson(v, values)]));
  return value;
}

/** A header value may not carry a line break (it would start another header). */
export function headerSafe(s: string): string {
  if (/[\r\n]/.test(s)) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      'a header placeholder holds a line break',
      'put PEM and other multi-line values in the body, not in a header',
    );
  }
  return s;
}
