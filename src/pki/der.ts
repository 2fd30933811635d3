/**
 * The little DER certfleet reads and writes by hand (X.690): definite lengths, one-byte tags. A schema parse or
 * serialisation (@peculiar/asn1-schema over asn1js) of a whole certificate costs ~0.3-0.6 ms; the few fields the
 * hot paths need (a leaf's TBS, a certificate's extensions and key, a PKCS#8 EC key) cost microseconds this way.
 * Readers throw a plain Error on anything unexpected: callers then hand the input to a full parser.
 */

export interface Tlv {
  tag: number;
  /** Where the element's header starts. */
  at: number;
  /** Where its contents start and end. */
  start: number;
  end: number;
}

/** One DER element at `at` (definite lengths only), which must have tag `want` when given. */
export function tlv(der: Uint8Array, at: number, want?: number): Tlv {
  const tag = der[at];
  if (want !== undefined && tag !== want) throw new Error('unexpected tag');
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte tag');
  let len = der[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3) throw new Error('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | der[start + i];
    start += n;
  }
  const end = start + len;
  if (at + 2 > der.length || end > der.length) throw new Error('truncated');
  return { tag, at, start, end };
}

/** The elements inside a constructed one; its contents must be exactly those elements. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const c = tlv(der, at);
    out.push(c);
    at = c.end;
  }
  if (out.length && out[out.length - 1].end !== parent.end) throw new Error('trailing bytes');
  return out;
}

/** The contents of `e`, which must have tag `tag`. */
export function contents(der: Uint8Array, e: Tlv, tag: number): Uint8Array {
  if (e.tag !== tag) throw new Error('unexpected tag');
  return der.subarray(e.start, e.end);
}

/** An OBJECT IDENTIFIER's contents in dotted form ("2.5.29.19"). */
export function oidString(der: Uint8Array, e: Tlv): string {
  const b = contents(der, e, 0x06);
  if (b.length === 0) throw new Error('empty OID');
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < b.length; i++) {
    if (v > 2 ** 45) throw new Error('OID arc too large');
    v = v * 128 + (b[i] & 0x7f);
    if (!(b[i] & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  if (b[b.length - 1] & 0x80) throw new Error('truncated OID');
  const first = arcs[0];
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** A non-negative INTEGER small enough for a number (a pathLen constraint). */
export function smallUint(der: Uint8Array, e: Tlv): number {
  const b = contents(der, e, 0x02);
  if (b.length === 0 || b.length > 6 || b[0] & 0x80) throw new Error('not a small non-negative integer');
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

/** The header of an element with `length` content octets. */
function header(tag: number, length: number): Buffer {
  if (length < 0x80) return Buffer.from([tag, length]);
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n & 0xff);
  return Buffer.from([tag, 0x80 | octets.length, ...octets]);
}

/** One DER element: tag, definite length, and the contents given in parts. */
export function derElement(tag: number, ...parts: Uint8Array[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const h = header(tag, length);
  return Buffer.concat([h, ...parts], h.length + length);
}

/** A non-negative INTEGER from big-endian octets: leading zeros dropped, one zero kept before a set top bit. */
export function derUint(octets: Uint8Array): Buffer {
  let i = 0;
  while (i < octets.length - 1 && octets[i] === 0) i++;
  const v = octets.subarray(i);
  return v[0] & 0x80 ? derElement(0x02, Buffer.from([0]), v) : derElement(0x02, v);
}

/** Wraps base64 of DER at 64 characters a line between BEGIN/END lines (RFC 7468), without a final newline. */
export function pemOf(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----`;
}
