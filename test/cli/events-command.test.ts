import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli, startHubProcess } from '../helpers/cli.ts';

/** IDs in the first column of `certfleet events`' table, in the order printed. */
function ids(stdout: string): number[] {
  return stdout
    .split('\n')
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => Number(l.split(/\s+/)[0]));
}

describe('certfleet events pages the audit log both ways', () => {
  test('--limit shows the latest with their IDs; --before the first ID pages back; --after pages on; bad values exit 2', async (t) => {
    const hub = await startHubProcess(t);
    for (const name of ['a', 'b', 'c', 'd'])
      assert.equal((await runCli(['cert', 'add', name, '--san', `${name}.test`], hub.env)).code, 0);

    const all = await runCli(['--json', 'events', '--limit', '1000'], hub.env);
    assert.equal(all.code, 0, all.stderr);
    const every = (JSON.parse(all.stdout) as { id: number }[]).map((e) => e.id);
    assert.ok(every.length >= 8, `expected certificate and version events, got ${every.length}`);

    const latest = await runCli(['events', '--limit', '3'], hub.env);
    assert.equal(latest.code, 0, latest.stderr);
    assert.match(latest.stdout, /^ID\s+TIME\s+ACTOR\s+EVENT/);
    assert.deepEqual(ids(latest.stdout), every.slice(-3));

    const older = await runCli(
      ['events', '--limit', '3', '--before', String(ids(latest.stdout)[0])],
      hub.env,
    );
    assert.equal(older.code, 0, older.stderr);
    assert.deepEqual(ids(older.stdout), every.slice(-6, -3), 'the page just before, oldest first');

    const newer = await runCli(['events', '--limit', '2', '--after', String(every[0])], hub.env);
    assert.deepEqual(ids(newer.stdout), every.slice(1, 3));

    const both = await runCli(['events', '--before', '5', '--after', '1'], hub.env);
    assert.equal(both.code, 2);
    assert.match(
      both.stderr,
      /--before.*cannot be used with.*--after|--after.*cannot be used with.*--before/,
    );
    const bad = await runCli(['events', '--before', 'x'], hub.env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"x" is not a whole number/);
  });
});
