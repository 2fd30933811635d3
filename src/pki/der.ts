/**
 * Just enough DER reading to pick fields out of a certificate without a full ASN.1 parse: one TLV at a time,
 * single-byte tags, definite lengths (DER has no other). Throws on anything malformed.
 */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte: `der.subarray(at, end)` is the whole TLV. */
  at: number;
  /** Offset of the content's first byte. */
  start: number;
  /** Offset just past the content. */
  end: number;
}

export function readTlv(der: Uint8Array, offset: number, limit = der.length): Tlv {
  if (offset + 2 > limit) throw new Error('DER: truncated');
  const tag = der[offset];
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: multi-byte tag');
  let len = der[offset + 1];
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error('DER: bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i];
    start += n;
  }
  if (start + len > limit) throw new Error('DER: truncated');
  return { tag, at: offset, start, end: start + len };
}

/** The TLVs inside a constructed one. */
export function childrenOf(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const c = readTlv(der, at, parent.end);
    out.push(c);
    at = c.end;
  }
  return out;
}

/** An OBJECT IDENTIFIER's dotted form. */
export function oidOf(der: Uint8Array, t: Tlv): string {
  if (t.tag !== 0x06 || t.end === t.start) throw new Error('DER: not an OID');
  const parts: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    v = v * 128 + (der[i] & 0x7f);
    if (!(der[i] & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** A small non-negative INTEGER (pathLen and the like). */
export function smallIntOf(der: Uint8Array, t: Tlv): number {
  if (t.tag !== 0x02 || t.end === t.start || t.end - t.start > 4 || der[t.start] & 0x80)
    throw new Error('DER: not a small integer');
  let v = 0;
  for (let i = t.start; i < t.end; i++) v = v * 256 + der[i];
  return v;
}
