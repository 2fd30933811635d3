import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/core/log.ts';

test('the logger redacts secrets under every listed key, nested or not', () => {
  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  });
  const secrets = ['tok-123', 'pw-456', 'sec-789', 'KEYPEM', 'PRIV', 'Bearer abc', 'HMAC'];
  logger.info({
    token: secrets[0],
    password: secrets[1],
    secret: secrets[2],
    keyPem: secrets[3],
    privateKey: secrets[4],
    authorization: secrets[5],
    eab: { hmacKey: secrets[6], kid: 'kid-visible' },
    nested: { token: secrets[0], password: secrets[1] },
  });
  const out = lines.join('');
  for (const s of secrets) assert.ok(!out.includes(s), `${s} leaked: ${out}`);
  assert.match(out, /kid-visible/);
  assert.match(out, /\[redacted\]/);
});
