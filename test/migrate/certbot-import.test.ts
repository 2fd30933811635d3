import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { registerImportCommand } from '../../src/cli/import-command.ts';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.ts';
import { MemoryAccountStore } from '../../src/issuers/acme/account-store.ts';
import { readCertbotDirectory, parseRenewalConf } from '../../src/migrate/certbot-dir.ts';
import type { CertbotImportResult } from '../../src/migrate/certbot-types.ts';
import { certMatchesKey, fingerprintOf } from '../../src/pki/inspect.ts';
import {
  HubHttp01Solver,
  MemoryHttp01Store,
  startHttp01Listener,
} from '../../src/solvers/http01-responder.ts';
import { firstOffered } from '../../src/solvers/solver.ts';
import { onCleanup, suiteCleanup } from '../helpers/cleanup.ts';
import { startTestHub } from '../helpers/hub.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';

const run = promisify(execFile);
const rand = (p: string) => `${p}-${randomBytes(4).toString('hex')}.example.test`;

let pebble: Pebble;
let work: string;
let config: string; // certbot --config-dir
const names = { standalone: rand('ecdsa'), webroot: rand('webroot'), hook: rand('hook') };

async function certbot(args: string[]): Promise<void> {
  await run(
    'certbot',
    [
      'certonly',
      '--server',
      pebble.directoryUrl,
      '--config-dir',
      config,
      '--work-dir',
      join(work, 'work'),
      '--logs-dir',
      join(work, 'logs'),
      '--agree-tos',
      '--register-unsafely-without-email',
      '--non-interactive',
      ...args,
    ],
    { env: { ...process.env, REQUESTS_CA_BUNDLE: join(work, 'pebble-ca.pem') }, timeout: 60_000 },
  );
}

const atEnd = suiteCleanup();
before(async () => {
  pebble = await startPebble();
  atEnd(() => pebble.stop());
  work = await mkdtemp(join(tmpdir(), 'certfleet-certbot-'));
  atEnd(() => rm(work, { recursive: true, force: true }));
  config = join(work, 'letsencrypt');
  await writeFile(join(work, 'pebble-ca.pem'), pebble.caPem);
  // 1. ECDSA with certbot's own standalone listener, plus a pre-hook certfleet cannot map.
  await certbot([
    '--standalone',
    '--http-01-port',
    String(pebble.httpPort),
    '--key-type',
    'ecdsa',
    '--pre-hook',
    'true systemctl stop nginx',
    '-d',
    names.standalone,
  ]);
  // 2. RSA through a webroot that a tiny static server serves on pebble's http-01 port.
  const webroot = join(work, 'www');
  await mkdir(webroot, { recursive: true });
  const server: Server = createServer(async (req, res) => {
    try {
      res.end(await readFile(join(webroot, (req.url ?? '/').split('?')[0])));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(pebble.httpPort, '127.0.0.1', r));
  try {
    await certbot([
      '--webroot',
      '-w',
      webroot,
      '--key-type',
      'rsa',
      '--rsa-key-size',
      '2048',
      '-d',
      names.webroot,
    ]);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  // 3. A deploy hook.
  await certbot([
    '--standalone',
    '--http-01-port',
    String(pebble.httpPort),
    '--deploy-hook',
    'systemctl reload nginx',
    '-d',
    names.hook,
  ]);
});

/** Runs `certfleet import certbot` through the real command module against a hub. */
async function importCli(
  hub: { url: string; token: string; caPem: string },
  args: string[],
): Promise<string> {
  const program = new Command('certfleet')
    .option('--hub <url>')
    .option('--token <t>')
    .option('--ca-file <f>')
    .option('--json');
  program.exitOverride();
  registerImportCommand(program);
  const caFile = join(work, `hub-ca-${randomBytes(3).toString('hex')}.pem`);
  await writeFile(caFile, hub.caPem);
  const chunks: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((c: string) => (chunks.push(String(c)), true)) as typeof process.stdout.write;
  try {
    await program.parseAsync([
      'node',
      'certfleet',
      '--hub',
      hub.url,
      '--token',
      hub.token,
      '--ca-file',
      caFile,
      ...args,
    ]);
  } finally {
    process.stdout.write = write;
  }
  return chunks.join('');
}

describe('certbot import from a directory made by the real certbot against Pebble', () => {
  test('reads lineages, renewal settings and the account', async () => {
    const d = await readCertbotDirectory(config);
    assert.deepEqual(d.problems, []);
    assert.deepEqual(d.lineages.map((l) => l.name).sort(), Object.values(names).sort());
    const web = d.lineages.find((l) => l.name === names.webroot)!;
    assert.equal(web.renewal?.authenticator, 'webroot');
    assert.equal(web.renewal?.server, pebble.directoryUrl);
    assert.equal(web.renewal?.webrootMap[names.webroot], join(work, 'www'));
    assert.equal(
      d.lineages.find((l) => l.name === names.hook)!.renewal?.deployHook,
      'systemctl reload nginx',
    );
    assert.equal(d.accounts.length, 1);
    assert.equal(d.accounts[0].server, pebble.directoryUrl);
    assert.match(d.accounts[0].uri ?? '', /^https:\/\/localhost:\d+\/my-account\//);
    assert.match(d.accounts[0].keyPem, /BEGIN PRIVATE KEY/);
  });

  test('creates certificates with their current version; re-import changes nothing; the account is reused', async (t) => {
    const hub = await startTestHub(t);
    const accountStore = new MemoryAccountStore();
    const http01 = new MemoryHttp01Store();
    const acme = new AcmeIssuer({
      name: 'pebble',
      directoryUrl: pebble.directoryUrl,
      termsOfServiceAgreed: true,
      caPem: pebble.caPem,
      accountStore,
      solvers: firstOffered([new HubHttp01Solver(http01)]),
    });
    onCleanup(t, () => acme.close());
    hub.ctx.issuers.set('pebble', acme);

    // Dry run first: nothing changes.
    const dry = JSON.parse(
      await importCli(hub, ['--json', 'import', 'certbot', config, '--dry-run']),
    ) as CertbotImportResult;
    assert.deepEqual(
      dry.certificates.map((c) => c.status),
      ['would-create', 'would-create', 'would-create'],
    );
    assert.equal(dry.accounts[0].status, 'would-import');
    assert.equal((await hub.ctx.store.listCertificates()).length, 0);
    assert.equal(await accountStore.load(pebble.directoryUrl), undefined);

    const text = await importCli(hub, ['import', 'certbot', config]);
    console.log(text);
    assert.match(text, /CERTIFICATE\s+STATUS/);
    assert.match(
      text,
      /deploy_hook "systemctl reload nginx"[\s\S]*?subscription's reload command \(RENEWED_LINEAGE \/ RENEWED_DOMAINS are provided\)/,
    );
    assert.match(text, /pre_hook "true systemctl stop nginx"[\s\S]*?does not stop services for http-01/);
    assert.match(text, /authenticator webroot[\s\S]*?kind: webroot, webroot: \//);

    const local = await readCertbotDirectory(config);
    const expectKey = {
      [names.standalone]: 'ecdsa-p256',
      [names.webroot]: 'rsa-2048',
      [names.hook]: 'ecdsa-p256',
    };
    for (const l of local.lineages) {
      const cert = await hub.ctx.store.getCertificate(l.name);
      assert.ok(cert, `${l.name} imported`);
      assert.equal(cert.issuer, 'pebble', 'mapped to the issuer with the same directory');
      assert.equal(cert.keyType, expectKey[l.name]);
      assert.deepEqual(cert.sans, [l.name]);
      const v = await hub.ctx.store.currentVersion(cert.id);
      assert.equal(v?.fingerprint, fingerprintOf(l.certPem), "the current version is certbot's live cert");
      assert.equal(v?.chainPem, l.chainPems.join(''));
      const key = await hub.certificates.privateKeyOf(cert, v!);
      assert.ok(certMatchesKey(v!.certPem, key), 'the sealed key matches');
      const der = (pem: string) => createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
      assert.deepEqual(der(key), der(l.keyPem), "it is certbot's key");
    }
    const account = await accountStore.load(pebble.directoryUrl);
    assert.equal(account?.accountUrl, local.accounts[0].uri, "certbot's account moved into the issuer");

    // Re-import: nothing new.
    const revision = await hub.ctx.store.revision();
    const again = JSON.parse(
      await importCli(hub, ['--json', 'import', 'certbot', config]),
    ) as CertbotImportResult;
    assert.deepEqual(
      again.certificates.map((c) => c.status),
      ['unchanged', 'unchanged', 'unchanged'],
    );
    assert.equal(again.accounts[0].status, 'unchanged');
    assert.equal(await hub.ctx.store.revision(), revision);
    for (const l of local.lineages) {
      const cert = (await hub.ctx.store.getCertificate(l.name))!;
      assert.equal((await hub.ctx.store.listVersions(cert.id)).length, 1);
    }

    // The imported account works with the CA: the hub renews a lineage under certbot's account.
    const listener = await startHttp01Listener({ host: '127.0.0.1', port: pebble.httpPort, store: http01 });
    onCleanup(t, () => listener.close());
    const renewed = await hub.renewal.renewNow(names.hook, 'admin:test');
    assert.notEqual(
      renewed.fingerprint,
      fingerprintOf(local.lineages.find((l) => l.name === names.hook)!.certPem),
    );
    assert.equal((await accountStore.load(pebble.directoryUrl))?.accountUrl, local.accounts[0].uri);
  });

  test('without a matching issuer, certificates stay on internal and the server and account are reported', async (t) => {
    const hub = await startTestHub(t);
    const r = JSON.parse(
      await importCli(hub, ['--json', 'import', 'certbot', config]),
    ) as CertbotImportResult;
    assert.deepEqual(
      r.certificates.map((c) => [c.status, c.issuer]),
      [
        ['created', 'internal'],
        ['created', 'internal'],
        ['created', 'internal'],
      ],
    );
    assert.equal(r.accounts[0].status, 'not mapped');
    assert.ok(
      r.unmapped.some((u) => u.item === `server ${pebble.directoryUrl}` && /add an ACME issuer/.test(u.fix)),
    );
    assert.ok(r.unmapped.some((u) => /^account /.test(u.item)));
  });

  test('a lineage whose key does not match its certificate is reported, not imported', async (t) => {
    const hub = await startTestHub(t);
    const d = await readCertbotDirectory(config);
    const [a, b] = d.lineages;
    const r = await hub.client.post<CertbotImportResult>('/api/v1/import/certbot', {
      lineages: [{ ...a, keyPem: b.keyPem }],
      accounts: [],
    });
    assert.deepEqual(r.certificates, []);
    assert.match(r.unmapped[0].why, /does not belong to cert\.pem/);
    assert.equal(await hub.ctx.store.getCertificate(a.name), undefined);
  });
});

describe('renewal conf parsing (configobj)', () => {
  test('reads lists, webroot_map, manual hooks and quoted values', () => {
    const p = parseRenewalConf(
      [
        '# renew_before_expiry = 30 days',
        'version = 2.1.0',
        '[renewalparams]',
        'authenticator = manual',
        'server = https://acme-v02.api.letsencrypt.org/directory',
        'webroot_path = /var/www/a, /var/www/b,',
        'manual_auth_hook = /etc/le/auth.sh --zone "x"',
        "manual_cleanup_hook = '/etc/le/clean.sh, now'",
        'pref_challs = dns-01,',
        'post_hook = None',
        '[[webroot_map]]',
        'a.example = /var/www/a',
      ].join('\n'),
    );
    assert.equal(p.authenticator, 'manual');
    assert.deepEqual(p.webrootPath, ['/var/www/a', '/var/www/b']);
    assert.deepEqual(p.webrootMap, { 'a.example': '/var/www/a' });
    assert.equal(p.manualCleanupHook, '/etc/le/clean.sh, now');
    assert.equal(p.preferredChallenges, 'dns-01');
    assert.equal(p.postHook, undefined);
  });
});
