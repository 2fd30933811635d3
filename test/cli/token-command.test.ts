/**
 * `certfleet token create|list|revoke|rotate` through the real binary against a real hub process, and the audit
 * trail: every admin action records the name of the token that did it, never its secret.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli, startHubProcess, type HubProcess } from '../helpers/cli.ts';

/** Creates a token through the CLI and returns its secret. */
async function createToken(hub: HubProcess, args: string[]): Promise<{ name: string; secret: string }> {
  const r = await runCli(['--json', 'token', 'create', ...args], hub.env);
  assert.equal(r.code, 0, r.stderr);
  const issued = JSON.parse(r.stdout) as { token: { name: string }; secret: string };
  return { name: issued.token.name, secret: issued.secret };
}

describe('certfleet token', () => {
  test('create prints the secret once; list shows name, role, expiry and last use; revoke and rotate take effect at once', async (t) => {
    const hub = await startHubProcess(t);
    const created = await runCli(
      ['token', 'create', '--role', 'read', '--name', 'grafana', '--expires', '90d'],
      hub.env,
    );
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^created read token "grafana" \(expires \d{4}-\d\d-\d\dT/);
    const secret = /Secret \(shown once[^\n]*\n\s+(cfr_\S+)\n/.exec(created.stdout)?.[1];
    assert.ok(secret, created.stdout);

    const asGrafana = { ...hub.env, CERTFLEET_TOKEN: secret };
    assert.equal((await runCli(['cert', 'list'], asGrafana)).code, 0, 'a read token reads');
    const refused = await runCli(['cert', 'add', 'web', '--san', 'web.example.test'], asGrafana);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /error: this token is read-only\nhint: use an admin token/);

    const list = await runCli(['token', 'list'], hub.env);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    assert.match(lines[0], /^NAME\s+ROLE\s+CREATED\s+EXPIRES\s+LAST USED$/);
    assert.match(
      lines.find((l) => l.startsWith('grafana'))!,
      /^grafana\s+read\s+\S+\s+\S+ \(in 89d 23h\)\s+\d+m ago$/,
    );
    assert.match(
      lines.find((l) => l.startsWith('bootstrap'))!,
      /^bootstrap\s+admin\s+\S+\s+never\s+/,
    );
    assert.ok(!list.stdout.includes(secret) && !list.stdout.includes(hub.token), 'no secret listed');

    const rotated = await runCli(['--json', 'token', 'rotate', 'grafana'], hub.env);
    assert.equal(rotated.code, 0, rotated.stderr);
    const next = JSON.parse(rotated.stdout) as { secret: string; token: { role: string } };
    assert.equal(next.token.role, 'read');
    const stale = await runCli(['cert', 'list'], asGrafana);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /invalid API token \(unknown, revoked or rotated\)/);
    assert.equal((await runCli(['cert', 'list'], { ...hub.env, CERTFLEET_TOKEN: next.secret })).code, 0);

    const revoked = await runCli(['token', 'revoke', 'grafana'], hub.env);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout, 'revoked token grafana\n');
    assert.equal((await runCli(['cert', 'list'], { ...hub.env, CERTFLEET_TOKEN: next.secret })).code, 1);
  });

  test('rotate bootstrap replaces the first admin token; the old one stops working at once', async (t) => {
    const hub = await startHubProcess(t);
    const rotated = await runCli(['token', 'rotate', 'bootstrap'], hub.env);
    assert.equal(rotated.code, 0, rotated.stderr);
    const secret = /Secret[^\n]*\n\s+(cfa_\S+)\n/.exec(rotated.stdout)?.[1];
    assert.ok(secret, rotated.stdout);
    const old = await runCli(['token', 'list'], hub.env);
    assert.equal(old.code, 1);
    assert.match(old.stderr, /hint: .*certfleet token/);
    assert.equal((await runCli(['token', 'list'], { ...hub.env, CERTFLEET_TOKEN: secret })).code, 0);
  });

  test('bad input: usage errors exit 2 before any request; refusals exit 1 with a hint; nothing changes', async (t) => {
    const hub = await startHubProcess(t);
    const usage: Array<[string[], RegExp]> = [
      [['token', 'create'], /required option '--role <role>' not specified/],
      [['token', 'create', '--role', 'root'], /Allowed choices are read, admin/],
      [['token', 'create', '--role', 'read', '--name', 'Has Space'], /token name "Has Space" must be 1-63/],
      [['token', 'create', '--role', 'read', '--expires', '30s'], /"30s" is outside 1m\.\.3660d/],
      [['token', 'revoke', '../x'], /token name "\.\.\/x" must be/],
    ];
    for (const [args, message] of usage) {
      const r = await runCli(args, hub.env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    await createToken(hub, ['--role', 'read', '--name', 'dup']);
    const refusals: Array<[string[], RegExp]> = [
      [['token', 'create', '--role', 'admin', '--name', 'dup'], /error: token "dup" already exists\nhint: /],
      [['token', 'revoke', 'nobody'], /error: no token named "nobody"\nhint: see `certfleet token list`/],
      [['token', 'rotate', 'nobody'], /error: no token named "nobody"/],
      [
        ['token', 'revoke', 'bootstrap'],
        /error: token "bootstrap" is the last admin token\nhint: create another/,
      ],
    ];
    for (const [args, message] of refusals) {
      const r = await runCli(args, hub.env);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const json = await runCli(['--json', 'token', 'list'], hub.env);
    assert.deepEqual(
      (JSON.parse(json.stdout) as Array<{ name: string; role: string }>).map((x) => [x.name, x.role]),
      [
        ['bootstrap', 'admin'],
        ['dup', 'read'],
      ],
    );
  });

  test('every admin action records the name of the token that did it, never the secret', async (t) => {
    const hub = await startHubProcess(t);
    const alice = await createToken(hub, ['--role', 'admin', '--name', 'alice']);
    const bob = await createToken(hub, ['--role', 'admin', '--name', 'bob']);
    const as = (who: { secret: string }) => ({ ...hub.env, CERTFLEET_TOKEN: who.secret });
    const steps: Array<[{ secret: string }, string[]]> = [
      [alice, ['cert', 'add', 'web', '--san', 'web.example.test']],
      [bob, ['endpoint', 'add', 'web1', '--connector', '--probe', '127.0.0.1:1']],
      [alice, ['subscribe', 'web1', 'web', '--output', 'fullchain:/tmp/certfleet-audit-never-written.pem']],
      [bob, ['cert', 'renew', 'web']],
      [alice, ['endpoint', 'rm', 'web1']],
      [bob, ['token', 'revoke', 'alice']],
    ];
    for (const [who, args] of steps) {
      const r = await runCli(args, as(who));
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    const r = await runCli(['--json', 'events', '--limit', '1000'], as(bob));
    assert.equal(r.code, 0, r.stderr);
    const events = JSON.parse(r.stdout) as Array<{ actor: string; kind: string; subject: string }>;
    const by = (kind: string, subject: string) =>
      events.filter((e) => e.kind === kind && e.subject === subject).map((e) => e.actor);
    assert.deepEqual(by('certificate.created', 'certificate:web'), ['admin:alice']);
    assert.deepEqual(by('endpoint.created', 'endpoint:web1'), ['admin:bob']);
    assert.deepEqual(
      events.filter((e) => e.kind === 'subscription.created').map((e) => e.actor),
      ['admin:alice'],
    );
    assert.deepEqual(by('version.issued', 'certificate:web').slice(-1), ['admin:bob'], 'the renewal');
    assert.deepEqual(by('endpoint.deleted', 'endpoint:web1'), ['admin:alice']);
    assert.deepEqual(by('token.created', 'token:alice'), ['admin:bootstrap']);
    assert.deepEqual(by('token.revoked', 'token:alice'), ['admin:bob']);
    for (const secret of [alice.secret, bob.secret, hub.token]) {
      assert.ok(!r.stdout.includes(secret), 'a secret is in the audit log');
    }
  });
});
