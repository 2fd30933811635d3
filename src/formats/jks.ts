import { createHash, randomBytes } from 'node:crypto';
import { DEFAULT_ALIAS, type OutputFormat } from './output-format.ts';
import { bundleKey, chainDer, requirePassword } from './pem-util.ts';

/**
 * Java KeyStore (JKS) writer. No npm package writes JKS, and the format is small: a big-endian stream of
 * entries followed by a SHA-1 digest keyed with the store password (sun.security.provider.JavaKeyStore).
 * Prefer pkcs12 for Java 9+; JKS is for consumers that insist on it (old Tomcat/JBoss configs, keytool -storetype JKS).
 */

const MAGIC = 0xfeedfeed;
const VERSION = 2;
const TAG_PRIVATE_KEY = 1;
// Sun's proprietary key protector, sun.security.provider.KeyProtector.
const KEY_PROTECTOR_OID = [1, 3, 6, 1, 4, 1, 42, 2, 17, 1, 1];

/** Java chars as bytes, high byte first: how JavaKeyStore and KeyProtector feed the password to SHA-1. */
function passwordBytes(password: string): Buffer {
  const b = Buffer.alloc(password.length * 2);
  for (let i = 0; i < password.length; i++) b.writeUInt16BE(password.charCodeAt(i), i * 2);
  return b;
}

const sha1 = (...parts: Buffer[]) => parts.reduce((h, p) => h.update(p), createHash('sha1')).digest();

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x >>= 8) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const der = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);

function derOid(arcs: number[]): Buffer {
  const out = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f];
    for (let x = arc >> 7; x > 0; x >>= 7) chunk.unshift(0x80 | (x & 0x7f));
    out.push(...chunk);
  }
  return der(0x06, Buffer.from(out));
}

/** KeyProtector.protect: XOR with a SHA-1 keystream seeded by a random salt, then a SHA-1 integrity check. */
function protectKey(pkcs8: Buffer, password: string): Buffer {
  const pw = passwordBytes(password);
  const salt = randomBytes(20);
  const stream: Buffer[] = [];
  for (let digest = salt, n = 0; n < pkcs8.length; n += 20) stream.push((digest = sha1(pw, digest)));
  const keystream = Buffer.concat(stream);
  const encrypted = Buffer.from(pkcs8.map((b, i) => b ^ keystream[i]));
  const protectedKey = Buffer.concat([salt, encrypted, sha1(pw, pkcs8)]);
  // EncryptedPrivateKeyInfo { AlgorithmIdentifier { KEY_PROTECTOR_OID, NULL }, OCTET STRING }
  const algId = der(0x30, Buffer.concat([derOid(KEY_PROTECTOR_OID), Buffer.from([0x05, 0x00])]));
  return der(0x30, Buffer.concat([algId, der(0x04, protectedKey)]));
}

/** DataOutputStream.writeUTF: u16 length, then modified UTF-8 (NUL as two bytes, surrogates encoded singly). */
function javaUtf(s: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x01 && c <= 0x7f) bytes.push(c);
    else if (c <= 0x7ff) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length);
  return Buffer.concat([len, Buffer.from(bytes)]);
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

export function renderJks(
  chain: Buffer[],
  pkcs8: Buffer,
  password: string,
  alias: string,
  now = new Date(),
): Buffer {
  const timestamp = Buffer.alloc(8);
  timestamp.writeBigUInt64BE(BigInt(now.getTime()));
  const protectedKey = protectKey(pkcs8, password);
  const body = Buffer.concat([
    u32(MAGIC),
    u32(VERSION),
    u32(1),
    u32(TAG_PRIVATE_KEY),
    // JKS aliases are case-insensitive: Java lower-cases them on lookup, so store them lower-cased.
    javaUtf(alias.toLowerCase()),
    timestamp,
    u32(protectedKey.length),
    protectedKey,
    u32(chain.length),
    ...chain.flatMap((c) => [javaUtf('X.509'), u32(c.length), c]),
  ]);
  const digest = sha1(passwordBytes(password), Buffer.from('Mighty Aphrodite', 'utf8'), body);
  return Buffer.concat([body, digest]);
}

export const jksFormat: OutputFormat = {
  name: 'jks',
  description:
    'Java KeyStore with one PrivateKeyEntry (key, leaf, intermediates); key password = store password',
  async render(bundle, opts) {
    const password = requirePassword('jks', opts.password);
    const pkcs8 = bundleKey(bundle).export({ type: 'pkcs8', format: 'der' });
    return renderJks(chainDer(bundle), pkcs8, password, opts.alias ?? DEFAULT_ALIAS);
  },
};
