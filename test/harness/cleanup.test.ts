/**
 * Test cleanups (test/helpers/cleanup.ts) run last-registered first, so whatever runs in a directory stops before
 * the directory goes; node:test's own `t.after` runs hooks in registration order and stops at the first throw.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { onCleanup, runLastFirst, suiteCleanup } from '../helpers/cleanup.ts';

test('onCleanup runs the cleanups of a test last-registered first when the test ends', async (t) => {
  const ran: string[] = [];
  await t.test('inner', (inner) => {
    onCleanup(inner, () => ran.push('remove dir'));
    onCleanup(inner, async () => {
      await new Promise((r) => setImmediate(r));
      ran.push('stop hub');
    });
    onCleanup(inner, () => ran.push('stop agent'));
    assert.deepEqual(ran, [], 'nothing runs before the test ends');
  });
  assert.deepEqual(ran, ['stop agent', 'stop hub', 'remove dir']);
});

test('every cleanup runs when some throw, then the first error thrown is rethrown', async () => {
  const ran: string[] = [];
  const stack = [
    () => ran.push('remove dir'),
    () => {
      ran.push('stop hub');
      throw new Error('hub did not stop');
    },
    async () => {
      ran.push('stop agent');
      throw new Error('agent did not stop');
    },
  ];
  await assert.rejects(runLastFirst(stack), { message: 'agent did not stop' });
  assert.deepEqual(ran, ['stop agent', 'stop hub', 'remove dir']);
  assert.deepEqual(stack, [], 'the stack is emptied');
});

const suiteRan: string[] = [];
describe('suiteCleanup', () => {
  const atEnd = suiteCleanup();
  test('registers during the suite', () => {
    atEnd(() => suiteRan.push('remove dir'));
    atEnd(() => suiteRan.push('stop server'));
  });
  test('runs nothing before the suite ends', () => {
    assert.deepEqual(suiteRan, []);
  });
});

test('suiteCleanup runs last-registered first when its describe block ends', () => {
  assert.deepEqual(suiteRan, ['stop server', 'remove dir']);
});
