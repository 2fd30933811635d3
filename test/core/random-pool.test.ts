/** randomBytesPooled: sizes as asked, every value distinct, none sharing memory with the pool or each other. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytesPooled } from '../../src/core/random-pool.ts';

test('hands out each pooled byte once, as a copy, across refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const n = [12, 16, 1, 255][i % 4];
    const b = randomBytesPooled(n);
    assert.equal(b.length, n);
    if (n >= 12) {
      const hex = b.toString('hex');
      assert.ok(!seen.has(hex), 'no value twice');
      seen.add(hex);
    }
    b.fill(0); // the caller may overwrite its copy: the next values must not change
  }
  assert.ok(
    [...seen].every((hex) => !/^0+$/.test(hex)),
    'no value zeroed by a caller',
  );
  assert.equal(randomBytesPooled(1000).length, 1000, 'larger requests are drawn directly');
});
