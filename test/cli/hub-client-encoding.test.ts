/**
 * The CLI's HTTP client asks for gzip (a list page of a large fleet is tens of kB; the hub compresses a cached page
 * once) and reads both encodings; a gzip body that does not decompress is a clear error, not a stack trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { HubClient } from '../../src/cli/client.ts';
import { CertfleetError } from '../../src/core/errors.ts';
import { onCleanup } from '../helpers/cleanup.ts';

/** A stand-in hub on loopback that answers every request with `body` encoded as `encoding` says. */
async function answering(t: Parameters<typeof onCleanup>[0], encoding: 'gzip' | 'identity' | 'broken gzip') {
  const seen: IncomingHttpHeaders[] = [];
  const json = Buffer.from(JSON.stringify([{ name: 'web', sans: ['web.test'] }]));
  const server = createServer((req, res) => {
    seen.push(req.headers);
    res.setHeader('content-type', 'application/json');
    if (encoding === 'identity') return res.end(json);
    res.setHeader('content-encoding', 'gzip');
    res.end(encoding === 'gzip' ? gzipSync(json) : json);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(t, () => new Promise((r) => server.close(r)));
  const hub = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { client: new HubClient({ hub, token: 'cfa_test' }), seen, hub };
}

test('the CLI asks for gzip and reads a gzip answer', async (t) => {
  const { client, seen } = await answering(t, 'gzip');
  assert.deepEqual(await client.get('/api/v1/certificates'), [{ name: 'web', sans: ['web.test'] }]);
  assert.equal(seen[0]['accept-encoding'], 'gzip');
});

test('the CLI reads an uncompressed answer as before', async (t) => {
  const { client } = await answering(t, 'identity');
  assert.deepEqual(await client.get('/api/v1/certificates'), [{ name: 'web', sans: ['web.test'] }]);
});

test('a gzip answer that does not decompress is a clear error naming the hub', async (t) => {
  const { client, hub } = await answering(t, 'broken gzip');
  await assert.rejects(client.get('/api/v1/certificates'), (err: unknown) => {
    assert.ok(err instanceof CertfleetError);
    assert.equal(err.code, 'UNREACHABLE');
    assert.match(err.message, new RegExp(`the hub at ${hub} sent a gzip answer that does not decompress`));
    assert.match(err.hint, /proxy/);
    return true;
  });
});
