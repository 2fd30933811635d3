import { isIP } from 'node:net';

/** Names of certificates, endpoints, tokens, issuers: one rule, shared by the API schemas and the CLI's parsers. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const NAME_RULE =
  'must be 1-63 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit';

/**
 * Validates a subject alternative name: an IP address, or a DNS name of LDH labels (RFC 1123), optionally with a
 * single leading `*.` wildcard label. Returns a problem in words, or undefined when the name is fine.
 */
export function sanProblem(name: string): string | undefined {
  if (isIP(name)) return undefined;
  if (name.length === 0) return 'is empty';
  if (name.length > 253) return 'is longer than 253 characters';
  if (name !== name.toLowerCase()) return 'must be lower-case';
  const labels = name.split('.');
  const [first, ...rest] = labels;
  const body = first === '*' ? rest : labels;
  if (first === '*' && rest.length < 2)
    return 'wildcard must cover a name with at least two labels (*.example.com)';
  if (body.length < 1) return 'has no labels';
  for (const label of body) {
    if (label === '*') return 'has a wildcard that is not the leftmost label';
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) {
      return `has an invalid label "${label}" (letters, digits and inner hyphens only, 1-63 characters)`;
    }
  }
  return undefined;
}

export function isIpAddress(name: string): boolean {
  return isIP(name) !== 0;
}

/** Expands an IPv6 address to its eight 16-bit groups. */
export function ipv6Groups(addr: string): number[] {
  let a = addr.replace(/^\[|\]$/g, '').split('%')[0];
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = a.match(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) {
    const [b0, b1, b2, b3] = v4.slice(1).map(Number);
    a = `${a.slice(0, v4.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
}
