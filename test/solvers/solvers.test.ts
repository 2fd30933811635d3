import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertfleetError } from '../../src/core/errors.ts';
import { CloudflareDnsSolver } from '../../src/solvers/dns-cloudflare.ts';
import { waitForTxt } from '../../src/solvers/dns-propagation.ts';
import { ExecHookSolver } from '../../src/solvers/exec-hook.ts';
import { http01Route, MemoryHttp01Store, startHttp01Listener } from '../../src/solvers/http01-responder.ts';
import { createSolver, SolverRegistry } from '../../src/solvers/registry.ts';
import { WebrootSolver } from '../../src/solvers/webroot.ts';
import { onCleanup, suiteCleanup } from '../helpers/cleanup.ts';
import { freePort } from '../helpers/pebble.ts';

const ch = {
  identifier: 'www.example.test',
  token: 'tok_EN-1',
  keyAuthorization: 'tok_EN-1.thumb',
  dnsValue: 'dnsVALUE_1',
};
const tmp = await mkdtemp(join(tmpdir(), 'certfleet-solvers-'));
suiteCleanup()(() => rm(tmp, { recursive: true, force: true }));

describe('http-01 served by the hub', () => {
  test('the listener answers known tokens and 404s everything else', async (t) => {
    const store = new MemoryHttp01Store();
    const l = await startHttp01Listener({ host: '127.0.0.1', port: 0, store });
    onCleanup(t, () => l.close());
    await store.put(ch.token, ch.keyAuthorization);
    const get = (p: string) =>
      fetch(`http://127.0.0.1:${l.port}${p}`).then(async (r) => [r.status, await r.text()]);
    assert.deepEqual(await get(`/.well-known/acme-challenge/${ch.token}`), [200, ch.keyAuthorization]);
    assert.equal((await get('/.well-known/acme-challenge/unknown'))[0], 404);
    assert.equal((await get('/.well-known/acme-challenge/..%2F..%2Fetc'))[0], 404);
    assert.equal((await get('/'))[0], 404);
    await store.delete(ch.token);
    assert.equal((await get(`/.well-known/acme-challenge/${ch.token}`))[0], 404);
  });

  test('the route handler for the hub API answers like the listener', async () => {
    const store = new MemoryHttp01Store();
    await store.put(ch.token, ch.keyAuthorization);
    const reply = {
      status: 0,
      body: '',
      code(n: number) {
        this.status = n;
      },
      type() {},
      send(b: string) {
        this.body = b;
      },
    };
    await http01Route(store)({ params: { token: ch.token } }, reply);
    assert.deepEqual([reply.status, reply.body], [200, ch.keyAuthorization]);
    await http01Route(store)({ params: { token: 'nope' } }, reply);
    assert.equal(reply.status, 404);
  });
});

describe('webroot', () => {
  test('writes the answer 0644 under .well-known/acme-challenge (dirs created) and removes it on cleanup', async () => {
    const root = join(tmp, 'www-new');
    const s = new WebrootSolver(root);
    const prev = process.umask(0o077);
    try {
      await s.present(ch);
    } finally {
      process.umask(prev);
    }
    const file = join(root, '.well-known/acme-challenge', ch.token);
    assert.equal(await readFile(file, 'utf8'), ch.keyAuthorization);
    assert.equal((await stat(file)).mode & 0o777, 0o644);
    await s.cleanup(ch);
    await assert.rejects(stat(file), /ENOENT/);
  });

  test('refuses a token that would escape the webroot', async () => {
    await assert.rejects(new WebrootSolver(tmp).present({ ...ch, token: '../../evil' }), /not base64url/);
  });
});

describe('exec hooks', () => {
  test('pass certbot variables; cleanup gets the auth output', async () => {
    const out = join(tmp, 'exec.out');
    const s = new ExecHookSolver({
      authCommand: `echo "$CERTBOT_DOMAIN $CERTBOT_VALIDATION $CERTBOT_TOKEN" > ${out}; echo from-auth`,
      cleanupCommand: `echo "$CERTBOT_AUTH_OUTPUT" >> ${out}`,
    });
    await s.present(ch);
    await s.cleanup(ch);
    assert.equal(await readFile(out, 'utf8'), `${ch.identifier} ${ch.dnsValue} ${ch.token}\nfrom-auth\n`);
  });

  test('a failing hook names the command, the exit code and the stderr tail', async () => {
    const s = new ExecHookSolver({ authCommand: 'echo "zone not found: example.test" >&2; exit 3' });
    const err = (await s.present(ch).catch((e) => e)) as CertfleetError;
    assert.equal(err.code, 'ISSUANCE_FAILED');
    assert.match(err.message, /hook "echo .*" exited with 3; stderr: zone not found: example\.test/);
  });

  test('a hook that hangs is killed at the timeout', async () => {
    // the marker would exist if the hook had been waited for instead of killed
    const marker = join(tmp, 'hung-hook-finished');
    const err = (await new ExecHookSolver({ authCommand: `sleep 30; touch ${marker}`, timeoutMs: 300 })
      .present(ch)
      .catch((e) => e)) as Error;
    assert.match(err.message, /hook "sleep 30; touch .*" did not finish within 0.3 s/);
    await assert.rejects(stat(marker), { code: 'ENOENT' });
  });
});

describe('dns-01 via the fake Cloudflare API', () => {
  test('fake Cloudflare API: finds the zone by walking up, creates the TXT record, deletes exactly it', async (t) => {
    const records = new Map<string, { id: string; type: string; name: string; content: string }>();
    const seenAuth = new Set<string>();
    let next = 1;
    const server = createServer((req, res) => {
      seenAuth.add(req.headers.authorization ?? '');
      const u = new URL(req.url!, 'http://x');
      const send = (status: number, body: object) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.headers.authorization !== 'Bearer cf-secret-token')
        return send(403, {
          success: false,
          errors: [{ code: 9109, message: 'Invalid access token' }],
          result: null,
        });
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.method === 'GET' && u.pathname === '/client/v4/zones') {
          const name = u.searchParams.get('name');
          return send(200, { success: true, result: name === 'example.test' ? [{ id: 'zone1', name }] : [] });
        }
        const m = u.pathname.match(/^\/client\/v4\/zones\/zone1\/dns_records(?:\/(\w+))?$/);
        if (m && req.method === 'POST') {
          const rec = { id: `rec${next++}`, ...JSON.parse(body) };
          records.set(rec.id, rec);
          return send(200, { success: true, result: rec });
        }
        if (m && req.method === 'DELETE' && records.delete(m[1]))
          return send(200, { success: true, result: { id: m[1] } });
        send(404, { success: false, errors: [{ code: 7003, message: 'not found' }], result: null });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onCleanup(t, () => new Promise((r) => server.close(r)));
    const baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/client/v4`;
    const s = new CloudflareDnsSolver({ apiToken: 'cf-secret-token', baseUrl });
    const other = { ...ch, token: 'other', dnsValue: 'other-value' };
    await s.present(ch);
    await s.present(other);
    assert.deepEqual(
      [...records.values()].map((r) => [r.type, r.name, r.content]),
      [
        ['TXT', '_acme-challenge.www.example.test', ch.dnsValue],
        ['TXT', '_acme-challenge.www.example.test', 'other-value'],
      ],
    );
    await s.cleanup(ch);
    assert.deepEqual(
      [...records.values()].map((r) => r.content),
      ['other-value'],
    );

    const bad = new CloudflareDnsSolver({ apiToken: 'wrong-secret', baseUrl });
    const err = (await bad.present(ch).catch((e) => e)) as CertfleetError;
    assert.match(err.message, /HTTP 403: 9109 Invalid access token/);
    assert.match(err.hint, /token/);
    assert.ok(!JSON.stringify({ m: err.message, h: err.hint, d: err.details }).includes('wrong-secret'));
  });
});

describe('dns propagation check', () => {
  test('names the record, the wait and the resolver when the TXT value never shows', async () => {
    const port = await freePort(true);
    const err = (await waitForTxt('_acme-challenge.x.example.test', 'v', {
      resolvers: [`127.0.0.1:${port}`],
      timeoutMs: 800,
    }).catch((e) => e)) as CertfleetError;
    assert.match(
      err.message,
      new RegExp(
        `DNS TXT record _acme-challenge\\.x\\.example\\.test not visible after 1 s at 127\\.0\\.0\\.1:${port}`,
      ),
    );
    assert.match(err.hint, /provider/);
  });
});

describe('solver registry', () => {
  test('builds solvers from validated config', () => {
    assert.equal(createSolver({ kind: 'webroot', webroot: '/var/www' }).type, 'http-01');
    assert.equal(
      createSolver({
        kind: 'challtestsrv',
        managementUrl: 'http://127.0.0.1:8055',
        propagation: { resolvers: ['127.0.0.1:8053'] },
      }).type,
      'dns-01',
    );
    assert.equal(createSolver({ kind: 'http-01' }, { http01Store: new MemoryHttp01Store() }).type, 'http-01');
  });

  test('unknown kinds and bad fields are CONFIG_INVALID errors naming the field', () => {
    assert.throws(
      () => createSolver({ kind: 'route53' }),
      (e: CertfleetError) =>
        e.code === 'CONFIG_INVALID' &&
        /unknown solver kind "route53"/.test(e.message) &&
        /webroot/.test(e.hint),
    );
    assert.throws(
      () => createSolver({ kind: 'webroot', webroot: 'relative/dir' }),
      /solver "webroot" config is invalid: webroot: must be an absolute path/,
    );
    assert.throws(
      () => createSolver({ kind: 'exec', authCommand: 'x', timeoutSeconds: -1 }),
      /timeoutSeconds/,
    );
  });

  test('a kind cannot be registered twice', () => {
    const r = new SolverRegistry();
    const f = { schema: {} as never, create: () => ({}) as never };
    r.register('x', f);
    assert.throws(() => r.register('x', f), /registered twice/);
  });
});
