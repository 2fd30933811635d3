import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { newWrappedDataKey, Sealer, unwrapDataKey } from '../../src/store/sealing.ts';

/** Builds a sealed value by hand in the stored layout `v1:base64(iv | tag | ciphertext)`, with the tag cut to `tagBytes`. */
function handSealed(key: Buffer, plaintext: string, context: string, tagBytes: number): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag().subarray(0, tagBytes);
  return `v1:${Buffer.concat([iv, tag, body]).toString('base64')}`;
}

describe('sealing (AES-256-GCM at rest)', () => {
  const key = randomBytes(32);
  const sealer = new Sealer(key);

  test('a value sealed in the stored layout with the full 16-byte tag opens', () => {
    assert.equal(sealer.unseal(handSealed(key, 'secret', 'ctx', 16), 'ctx'), 'secret');
    assert.equal(sealer.unseal(handSealed(key, '', 'ctx', 16), 'ctx'), '');
    assert.equal(sealer.unseal(sealer.seal('secret', 'ctx'), 'ctx'), 'secret');
  });

  test('a GCM tag cut to 4 bytes is refused, although it authenticates (Node would accept it)', () => {
    // With an empty plaintext the value is only iv + 4 tag bytes: a 1-in-2^32 forgery if short tags were accepted.
    const truncated = handSealed(key, '', 'ctx', 4);
    assert.throws(
      () => sealer.unseal(truncated, 'ctx'),
      (e: any) => {
        assert.equal(e.code, 'MASTER_KEY_MISMATCH');
        assert.match(e.message, /sealed secret \(ctx\) is malformed: .*16-byte GCM tag/);
        assert.match(e.hint, /restore it from a backup/);
        return true;
      },
    );
  });

  test('every tag shorter than 16 bytes is refused', () => {
    for (const tagBytes of [4, 8, 12, 13, 14, 15]) {
      assert.throws(
        () => sealer.unseal(handSealed(key, '', 'ctx', tagBytes), 'ctx'),
        /16-byte GCM tag/,
        `${tagBytes}`,
      );
    }
  });

  test('a wrapped data key with a truncated tag is refused as malformed, not as a wrong master key', () => {
    assert.equal(unwrapDataKey(key, newWrappedDataKey(key)).length, 32);
    assert.throws(
      () => unwrapDataKey(key, handSealed(key, '', 'data-key', 4)),
      /data key stored in this data directory is malformed: .*16-byte GCM tag/,
    );
  });

  test('a value of another format is refused without echoing it', () => {
    assert.throws(
      () => sealer.unseal('plaintext-password', 'ctx'),
      (e: any) =>
        /malformed: unknown sealed format/.test(e.message) && !e.message.includes('plaintext-password'),
    );
  });
});
