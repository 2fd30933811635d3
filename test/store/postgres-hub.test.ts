/**
 * `certfleet hub --database-url postgres://…` (or CERTFLEET_DATABASE_URL) keeps the store in PostgreSQL: the real
 * binary against a private cluster. Keys and ca.pem stay in the data directory; no hub.db is created there.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli, startHubProcess } from '../helpers/cli.ts';
import { sharedPostgres } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/tmp.ts';

const postgres = sharedPostgres();

describe('certfleet hub on PostgreSQL', () => {
  test('a certificate created through the CLI is still there after the hub restarts', async (t) => {
    const url = await postgres.database();
    const first = await startHubProcess(t, {}, { args: ['--database-url', url] });
    assert.match(first.output(), /store: PostgreSQL certfleet@127\.0\.0\.1:\d+\/cf_\w+/);
    const add = await runCli(['cert', 'add', 'web', '--san', 'web.example.test'], first.env);
    assert.equal(add.code, 0, add.stderr);
    await first.stop();
    assert.equal(existsSync(join(first.dataDir, 'hub.db')), false, 'nothing stored in SQLite');

    // the same data directory (master key) and database, chosen through the environment this time
    const again = await startHubProcess(t, { CERTFLEET_DATABASE_URL: url }, { dataDir: first.dataDir });
    assert.equal(again.token, '', 'the admin token was created by the first start, not again');
    const list = await runCli(['--json', 'cert', 'list'], { ...again.env, CERTFLEET_TOKEN: first.token });
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).map((c: { name: string }) => c.name),
      ['web'],
    );
  });

  test('a database URL that cannot be used stops the hub with a clear error, a hint and no stack trace', async (t) => {
    const dataDir = join(await tempDir(t), 'data');
    const hub = (url: string) =>
      runCli(['hub', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--database-url', url]);

    const refused = await hub('postgres://certfleet:s3cret@127.0.0.1:1/fleet');
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      /cannot use PostgreSQL database certfleet@127\.0\.0\.1:1\/fleet: connection refused/,
    );
    assert.match(refused.stderr, /hint: .*CERTFLEET_DATABASE_URL/);
    assert.doesNotMatch(refused.stderr, /s3cret|\n\s+at /);

    const notPostgres = await hub('mysql://db.example.test/fleet');
    assert.notEqual(notPostgres.code, 0);
    assert.match(notPostgres.stderr, /the database URL is not a postgres:\/\/ URL/);
    assert.doesNotMatch(notPostgres.stderr, /\n\s+at /);
  });
});
