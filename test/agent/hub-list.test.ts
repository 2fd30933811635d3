import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HubList, parseHubList, type HubChange } from '../../src/agent/hub-list.ts';

test('hub URLs come comma-separated or repeated, without trailing slashes or duplicates', () => {
  assert.deepEqual(parseHubList('https://a:8443/, https://b:8443'), ['https://a:8443', 'https://b:8443']);
  assert.deepEqual(parseHubList(['https://a:8443', 'https://b:8443,https://a:8443']), [
    'https://a:8443',
    'https://b:8443',
  ]);
  assert.throws(() => parseHubList(' , '), /--hub names no hub URL/);
  assert.throws(() => parseHubList('https://a:8443,hub-b'), /"hub-b" is not a hub URL/);
});

test('a failing hub hands over to the next; the first is taken back once it answers after the wait', () => {
  let now = 0;
  const changes: HubChange[] = [];
  const list = new HubList(
    ['https://a', 'https://b', 'https://c'],
    60_000,
    (c) => changes.push(c),
    () => now,
  );
  assert.equal(list.current, 'https://a');
  assert.equal(list.shouldTryPreferred(), false, 'on the first hub there is nothing to come back to');

  list.failed('https://a', 'ECONNREFUSED');
  assert.equal(list.current, 'https://b');
  list.failed('https://a', 'a second request that was still on a'); // already moved on: no double step
  assert.equal(list.current, 'https://b');
  assert.deepEqual(changes, [{ from: 'https://a', to: 'https://b', reason: 'ECONNREFUSED' }]);

  now += 59_000;
  assert.equal(list.shouldTryPreferred(), false);
  now += 1_000;
  assert.equal(list.shouldTryPreferred(), true);
  list.preferredChecked(false); // still down: wait another period
  assert.equal(list.current, 'https://b');
  assert.equal(list.shouldTryPreferred(), false);
  now += 60_000;
  list.preferredChecked(true);
  assert.equal(list.current, 'https://a');
  assert.equal(changes.at(-1)?.to, 'https://a');

  const one = new HubList(['https://only']);
  one.failed('https://only', 'down');
  assert.equal(one.current, 'https://only', 'a single hub stays');
});
