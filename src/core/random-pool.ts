import { randomBytes } from 'node:crypto';

const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let used = 0;

/**
 * Small random values (IVs, nonces, serials) cut from a pool refilled 4 KiB at a time. Each randomBytes() call is a
 * crypto job of its own, 5–30 µs whatever its size; the hub seals a key and signs a serial per issuance and checks a
 * nonce per agent request. The bytes come from the same CSPRNG and each is handed out once, as a copy (node's
 * randomUUID pools the same way). Secrets (keys, tokens) are drawn directly.
 */
export function randomBytesPooled(n: number): Buffer {
  if (n > 256) return randomBytes(n);
  if (used + n > pool.length) {
    pool = randomBytes(POOL_BYTES);
    used = 0;
  }
  const out = Buffer.from(pool.subarray(used, used + n));
  pool.fill(0, used, used + n);
  used += n;
  return out;
}
