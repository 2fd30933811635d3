import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { Rfc2136DnsSolver } from '../../src/solvers/dns-rfc2136.ts';
import { waitForTxt } from '../../src/solvers/dns-propagation.ts';
import type { CertfleetError } from '../../src/core/errors.ts';
import { startBind } from '../helpers/bind.ts';
import { onCleanup } from '../helpers/cleanup.ts';

test('rfc2136: nsupdate with a TSIG key adds and removes the TXT record on a real BIND named', async (t) => {
  const bind = await startBind();
  onCleanup(t, () => bind.stop());
  const ch = {
    identifier: 'www.example.test',
    token: 't',
    keyAuthorization: 't.k',
    dnsValue: 'Zm9vYmFyLXZhbHVl_-x',
  };
  const s = new Rfc2136DnsSolver({
    server: '127.0.0.1',
    port: bind.port,
    keyName: bind.keyName,
    keySecret: bind.keySecret,
    zone: bind.zone,
  });
  await s.present(ch);
  const server = `127.0.0.1:${bind.port}`;
  await waitForTxt('_acme-challenge.www.example.test', ch.dnsValue, { resolvers: [server], timeoutMs: 3000 });
  await s.cleanup(ch);
  const r = new Resolver({ timeout: 500, tries: 1 });
  r.setServers([server]);
  await assert.rejects(r.resolveTxt('_acme-challenge.www.example.test'), /ENOTFOUND|ENODATA/);

  const wrongSecret = Buffer.alloc(32, 7).toString('base64');
  const bad = new Rfc2136DnsSolver({
    server: '127.0.0.1',
    port: bind.port,
    keyName: bind.keyName,
    keySecret: wrongSecret,
    zone: bind.zone,
    timeoutMs: 5000,
  });
  const err = (await bad.present(ch).catch((e) => e)) as CertfleetError;
  assert.equal(err.code, 'ISSUANCE_FAILED');
  assert.match(err.message, /nsupdate to 127\.0\.0\.1:\d+ failed \(exit 2\): .*(tsig|BADSIG|NOTAUTH)/i);
  assert.ok(!err.message.includes(wrongSecret), 'the TSIG secret stays out of the error');
});
