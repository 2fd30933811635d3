import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CertfleetError } from '../core/errors.ts';
import { randomBytesPooled } from '../core/random-pool.ts';

/**
 * Secrets at rest: every private key and credential is sealed with AES-256-GCM under a random data key; the data
 * key itself is stored wrapped under the master key. Rotating the master key re-wraps one value, not every secret.
 * The context string is bound as additional authenticated data, so a sealed value cannot be moved to another row.
 */
const VERSION = 'v1';
const IV_BYTES = 12;
/** The full GCM tag. A shorter one (Node accepts 4 to 16 bytes) would make forging a sealed value far cheaper. */
const TAG_BYTES = 16;

/** A sealed value that is not in the sealed format at all (as opposed to one that fails authentication). */
class MalformedSealedValue extends Error {}

function seal(key: Buffer, plaintext: Buffer, context: string): string {
  const iv = randomBytesPooled(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
}

function unseal(key: Buffer, sealed: string, context: string): Buffer {
  const [version, b64] = sealed.split(':', 2);
  if (version !== VERSION || !b64) throw new MalformedSealedValue('unknown sealed format');
  const raw = Buffer.from(b64, 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) {
    throw new MalformedSealedValue(
      `truncated: ${raw.length} bytes cannot hold a ${IV_BYTES}-byte IV and a ${TAG_BYTES}-byte GCM tag`,
    );
  }
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES), {
    authTagLength: TAG_BYTES,
  });
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
}

export class Sealer {
  constructor(private readonly dataKey: Buffer) {}

  seal(plaintext: string | Buffer, context: string): string {
    return seal(this.dataKey, Buffer.from(plaintext), context);
  }

  unseal(sealed: string, context: string): string {
    try {
      return unseal(this.dataKey, sealed, context).toString();
    } catch (e) {
      throw new CertfleetError(
        'MASTER_KEY_MISMATCH',
        e instanceof MalformedSealedValue
          ? `a sealed secret (${context}) is malformed: ${e.message}`
          : `a sealed secret (${context}) could not be decrypted`,
        'the database was modified or belongs to another data key; restore it from a backup',
        { cause: e },
      );
    }
  }
}

/**
 * Reads the master key: CERTFLEET_MASTER_KEY (any string of 32+ chars, or 64 hex chars) or `<dataDir>/master.key`,
 * which is created (0600) when missing unless `create` is false (tools that must not start a new data directory).
 */
export async function loadMasterKey(
  dataDir: string,
  env = process.env,
  opts: { create?: boolean } = {},
): Promise<Buffer> {
  const fromEnv = env.CERTFLEET_MASTER_KEY;
  if (fromEnv !== undefined) {
    if (fromEnv.length < 32) {
      throw new CertfleetError(
        'CONFIG_INVALID',
        'CERTFLEET_MASTER_KEY is too short',
        'use at least 32 random characters, e.g. `openssl rand -hex 32`',
      );
    }
    return /^[0-9a-f]{64}$/i.test(fromEnv)
      ? Buffer.from(fromEnv, 'hex')
      : createHash('sha256').update(fromEnv).digest();
  }
  const path = join(dataDir, 'master.key');
  try {
    return Buffer.from((await readFile(path, 'utf8')).trim(), 'hex');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (opts.create === false) {
    throw new CertfleetError(
      'MASTER_KEY_MISMATCH',
      `no master key: CERTFLEET_MASTER_KEY is not set and ${path} does not exist`,
      'set CERTFLEET_MASTER_KEY to the key the hub runs with, or restore master.key into the data directory',
    );
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  await writeFile(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600);
  return key;
}

/** Creates a new data key wrapped under the master key. */
export function newWrappedDataKey(masterKey: Buffer): string {
  return seal(masterKey, randomBytes(32), 'data-key');
}

export function unwrapDataKey(masterKey: Buffer, wrapped: string): Buffer {
  try {
    return unseal(masterKey, wrapped, 'data-key');
  } catch (e) {
    if (e instanceof MalformedSealedValue) {
      throw new CertfleetError(
        'MASTER_KEY_MISMATCH',
        `the data key stored in this data directory is malformed: ${e.message}`,
        'the database was modified; restore it from a backup',
        { cause: e },
      );
    }
    throw new CertfleetError(
      'MASTER_KEY_MISMATCH',
      'the master key does not open this data directory',
      'use the master key this data directory was created with (CERTFLEET_MASTER_KEY or <data-dir>/master.key)',
      { cause: e },
    );
  }
}
