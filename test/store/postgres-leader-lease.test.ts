/**
 * The leader lease (src/store/postgres/leader-lease.ts): of several contenders on one database exactly one leads;
 * when the leader's process is killed (-9, no goodbye), another takes over.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { LeaderLease } from '../../src/store/postgres/leader-lease.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { sharedPostgres } from '../helpers/postgres.ts';

const postgres = sharedPostgres();
const HOLDER = join(import.meta.dirname, 'fixtures', 'lease-holder.ts');

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function contender(t: Parameters<typeof onCleanup>[0], url: string): LeaderLease {
  const lease = new LeaderLease(url, { checkIntervalMs: 200 });
  onCleanup(t, () => lease.stop());
  return lease;
}

describe('leader lease on PostgreSQL', () => {
  test('of three contenders exactly one leads; when it gives the lease up, another takes it', async (t) => {
    const url = await postgres.database();
    const leases = [contender(t, url), contender(t, url), contender(t, url)];
    await Promise.all(leases.map((l) => l.start()));
    await new Promise((r) => setTimeout(r, 1000)); // several rounds of tries by the followers
    assert.equal(leases.filter((l) => l.isLeader).length, 1);

    const leader = leases.find((l) => l.isLeader)!;
    await leader.stop();
    const rest = leases.filter((l) => l !== leader);
    await until('a new leader', () => rest.some((l) => l.isLeader));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(rest.filter((l) => l.isLeader).length, 1);
  });

  test('a leader process killed with SIGKILL loses the lease to a waiting contender', async (t) => {
    const url = await postgres.database();
    const child = spawn(process.execPath, ['--import', 'tsx', HOLDER, url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    onCleanup(t, () => {
      if (child.exitCode === null && !child.signalCode) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await until('the child to lead', () => out.includes('leader'));

    const waiting = contender(t, url);
    await waiting.start();
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(waiting.isLeader, false, 'the lease is held by the child');

    const exited = new Promise((r) => child.once('exit', r));
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await exited;
    await until('the waiting contender to lead', () => waiting.isLeader);
    t.diagnostic(`takeover after kill -9: ${Date.now() - killedAt} ms (check interval 200 ms)`);
  });
});
