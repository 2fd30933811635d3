/**
 * The chain judgement against certificates made by the openssl CLI, one per case, each served by a real TLS
 * server and judged twice: by our probe (the verdict kind) and by `openssl s_client -verify_return_error
 * -verify_hostname`, which must agree on valid / invalid. Where OpenSSL and browsers differ we follow browsers,
 * and the row says so. The agent's bundle validation goes through the same judgement.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateBundle } from '../../src/deploy/validate-bundle.ts';
import { probeTarget } from '../../src/probe/probe.ts';
import type { ProbeResult } from '../../src/probe/probe-result.ts';
import { opensslPki, type OpensslCert } from '../helpers/openssl-pki.ts';
import { startTlsServer, type TestServer } from '../helpers/tls-servers.ts';

const DAY = 86_400_000;

interface Case {
  /** A sentence: what is served. */
  name: string;
  leaf: OpensslCert;
  chain: OpensslCert[];
  /** Our verdict: 'valid' or the error kind. */
  kind: string;
  warnings?: string[];
  /** Server protocol limits, for the cases that need them. */
  tls?: { minVersion?: 'TLSv1'; maxVersion?: 'TLSv1.1' | 'TLSv1.2' };
  /** Where OpenSSL's verdict differs from browsers' (and ours), why. */
  opensslDiffers?: string;
}

function opensslAccepts(port: number, caFile: string): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-servername',
        'localhost',
        '-verify_return_error',
        '-verify_hostname',
        'localhost',
        '-CAfile',
        caFile,
      ],
      { timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({
          ok: !err && /Verify return code: 0 \(ok\)/.test(stdout),
          output: `${(/Verify return code: .*/.exec(stdout) ?? [''])[0]} ${stderr.split('\n')[0]}`,
        }),
    );
    child.stdin?.end();
  });
}

describe('chain judgement: openssl-made certificates, served for real, judged like OpenSSL and browsers', () => {
  let dir: string;
  let root: OpensslCert;
  let inter: OpensslCert;
  let notCa: OpensslCert;
  let noKeyCertSign: OpensslCert;
  const cases: Case[] = [];
  const servers = new Map<string, TestServer>();
  const results = new Map<string, ProbeResult>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certfleet-judge-'));
    const pki = await opensslPki(dir);
    const now = Date.now();
    root = await pki.root('judge root', { notAfter: new Date(now + 3650 * DAY) });
    inter = await pki.intermediate('judge inter', root, { notAfter: new Date(now + 1000 * DAY) });
    notCa = await pki.intermediate('judge not a ca', root, {
      ext: ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyCertSign'],
    });
    noKeyCertSign = await pki.intermediate('judge no keyCertSign', root, {
      ext: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature,cRLSign'],
    });
    const pathLen0 = await pki.intermediate('judge pathlen 0', root, {
      ext: ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign'],
    });
    const belowPathLen0 = await pki.intermediate('judge below pathlen 0', pathLen0);
    const unrelated = await pki.root('judge unrelated');
    const leaf = (name: string, issuer = inter, more = {}) => pki.leaf(name, issuer, ['localhost'], more);
    const good = await leaf('good');
    cases.push(
      { name: 'a correct leaf + intermediate', leaf: good, chain: [inter], kind: 'valid' },
      {
        name: 'an issuer with CA:FALSE',
        leaf: await leaf('l1', notCa),
        chain: [notCa],
        kind: 'issuer_not_ca',
      },
      {
        name: 'an issuer whose keyUsage lacks keyCertSign',
        leaf: await leaf('l2', noKeyCertSign),
        chain: [noKeyCertSign],
        kind: 'bad_key_usage',
      },
      {
        name: 'an intermediate below a pathLen:0 CA',
        leaf: await leaf('l3', belowPathLen0),
        chain: [belowPathLen0, pathLen0],
        kind: 'path_len_exceeded',
      },
      {
        name: 'a leaf whose EKU is clientAuth only',
        leaf: await pki.leaf('l4', inter, ['localhost'], {
          ext: [
            'basicConstraints=critical,CA:FALSE',
            'extendedKeyUsage=clientAuth',
            'subjectAltName=DNS:localhost',
          ],
        }),
        chain: [inter],
        kind: 'wrong_eku',
      },
      {
        name: 'a SHA-1 signature',
        leaf: await leaf('l5', inter, { md: 'sha1' }),
        chain: [inter],
        kind: 'weak_signature',
      },
      {
        name: 'an RSA-1024 key',
        leaf: await leaf('l6', inter, { key: 'rsa:1024' }),
        chain: [inter],
        kind: 'weak_key',
      },
      {
        // No client offers these curves, so the normal handshake fails; the relaxed retry sees the certificate.
        name: 'a P-192 key',
        leaf: await leaf('l7', inter, { key: 'ec:prime192v1' }),
        chain: [inter],
        kind: 'unsupported_curve',
        tls: { maxVersion: 'TLSv1.2' },
      },
      {
        name: 'a secp256k1 key',
        leaf: await leaf('l8', inter, { key: 'ec:secp256k1' }),
        chain: [inter],
        kind: 'unsupported_curve',
        tls: { maxVersion: 'TLSv1.2' },
      },
      {
        name: 'an RSA-2048 key',
        leaf: await leaf('l9', inter, { key: 'rsa:2048' }),
        chain: [inter],
        kind: 'valid',
      },
      {
        name: 'no SAN, the name only in the CN',
        leaf: await pki.leaf('l10', inter, [], { cn: 'localhost' }),
        chain: [inter],
        kind: 'no_san',
        opensslDiffers: 'OpenSSL falls back to the CN when there is no DNS SAN; browsers never do',
      },
      {
        name: 'a leaf not valid yet',
        leaf: await leaf('l11', inter, {
          notBefore: new Date(now + 10 * DAY),
          notAfter: new Date(now + 100 * DAY),
        }),
        chain: [inter],
        kind: 'not_yet_valid',
      },
      {
        name: 'an expired leaf',
        leaf: await leaf('l12', inter, {
          notBefore: new Date(now - 100 * DAY),
          notAfter: new Date(now - 10 * DAY),
        }),
        chain: [inter],
        kind: 'expired',
      },
      { name: 'the leaf without its intermediate', leaf: good, chain: [], kind: 'missing_intermediate' },
      {
        name: 'root before intermediate',
        leaf: good,
        chain: [root, inter],
        kind: 'valid',
        warnings: ['out_of_order', 'root_sent'],
      },
      {
        name: 'an unrelated extra certificate',
        leaf: good,
        chain: [inter, unrelated],
        kind: 'valid',
        warnings: ['unrelated_certificate'],
      },
      {
        name: 'the root sent along',
        leaf: good,
        chain: [inter, root],
        kind: 'valid',
        warnings: ['root_sent'],
      },
      {
        name: 'a server speaking only TLS 1.1',
        leaf: good,
        chain: [inter],
        kind: 'old_tls_version',
        tls: { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' },
      },
    );
    for (const c of cases) {
      servers.set(
        c.name,
        await startTlsServer(
          { certPem: c.leaf.certPem, keyPem: c.leaf.keyPem, chainPems: c.chain.map((x) => x.certPem) },
          // OpenSSL's lowest security level, or the server would refuse to serve the weak certificates at all
          { tls: { ...c.tls, ciphers: 'DEFAULT@SECLEVEL=0' } },
        ),
      );
    }
    for (const c of cases) {
      const [r] = await probeTarget(
        { host: '127.0.0.1', port: servers.get(c.name)!.port, sni: 'localhost' },
        { trustedRootPems: [root.certPem], useSystemRoots: false, timeoutMs: 10_000 },
      );
      results.set(c.name, r);
    }
  });
  after(async () => {
    await Promise.all([...servers.values()].map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });

  test('each case gets its own verdict kind, a message naming the cause, and a fix', () => {
    const seen = cases.map((c) => {
      const r = results.get(c.name)!;
      return [c.name, r.ok ? 'valid' : r.error?.kind, (r.warnings ?? []).map((w) => w.kind)];
    });
    assert.deepEqual(
      seen,
      cases.map((c) => [c.name, c.kind, c.warnings ?? []]),
    );
    for (const c of cases.filter((x) => x.kind !== 'valid')) {
      const r = results.get(c.name)!;
      assert.match(r.error!.message, /Fix: /, c.name);
      // every failure still reports what was served
      assert.ok(r.fingerprint, `${c.name}: fingerprint`);
      assert.ok(r.chain?.length, `${c.name}: chain summary`);
    }
  });

  test('messages name the real cause, not a neighbouring one', () => {
    const msg = (name: string) => results.get(name)!.error!.message;
    assert.match(msg('an issuer with CA:FALSE'), /"CN=judge not a ca" .*not a CA certificate/);
    assert.doesNotMatch(msg('an issuer with CA:FALSE'), /missing intermediate/);
    assert.match(msg('a leaf not valid yet'), /is not valid before/);
    assert.doesNotMatch(msg('a leaf not valid yet'), /expired/);
    assert.match(msg('a SHA-1 signature'), /SHA-1/);
    assert.match(msg('an RSA-1024 key'), /1024-bit RSA/);
    assert.match(msg('a secp256k1 key'), /secp256k1/);
    assert.match(
      msg('no SAN, the name only in the CN'),
      /no subjectAltName.*Fix: reissue it with the host names/,
    );
    assert.match(
      msg('a server speaking only TLS 1.1'),
      /speaks only TLSv1\.1.*ssl_protocols TLSv1\.2 TLSv1\.3/,
    );
    const old = results.get('a server speaking only TLS 1.1')!;
    assert.equal(old.tlsVersion, 'TLSv1.1');
    assert.equal(old.failedAt, 'handshake');
    assert.ok(old.tlsError);
  });

  test('openssl s_client -verify_return_error -verify_hostname agrees on valid / invalid', async () => {
    const caFile = root.certPath;
    const rows = [];
    for (const c of cases) {
      const o = await opensslAccepts(servers.get(c.name)!.port, caFile);
      const ours = c.kind === 'valid';
      rows.push([c.name, c.opensslDiffers ? !ours : ours, o.ok, o.output]);
    }
    for (const [name, expected, actual, output] of rows)
      assert.equal(actual, expected, `${name}: openssl said ${output}`);
  });

  test("the agent's bundle validation gives the same verdicts (one judgement)", () => {
    const verdict = (name: string, roots: string[] = [root.certPem]) => {
      const c = cases.find((x) => x.name === name)!;
      const p = validateBundle(
        { certPem: c.leaf.certPem, chainPems: c.chain.map((x) => x.certPem), keyPem: c.leaf.keyPem },
        { now: new Date(), sans: [], trustedRootPems: roots },
      );
      return p ? (p.kind ?? p.check) : 'valid';
    };
    for (const name of [
      'a correct leaf + intermediate',
      'an issuer with CA:FALSE',
      'an issuer whose keyUsage lacks keyCertSign',
      'an intermediate below a pathLen:0 CA',
      'a leaf whose EKU is clientAuth only',
      'a SHA-1 signature',
      'an RSA-1024 key',
      'a secp256k1 key',
      'no SAN, the name only in the CN',
      'the leaf without its intermediate',
    ])
      assert.equal(verdict(name), cases.find((x) => x.name === name)!.kind, name);
    // without configured roots, the last chain certificate is the anchor, and it must still be a CA
    assert.equal(verdict('an issuer with CA:FALSE', []), 'issuer_not_ca');
    assert.equal(verdict('a correct leaf + intermediate', []), 'valid');
    assert.equal(verdict('a SHA-1 signature', []), 'weak_signature');
  });
});
