/**
 * The local command connector: the hub renders the outputs into a private temp dir and runs the subscription's
 * commands there with certbot's deploy-hook variables; a real shell script stands in for a vendor tool.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Deployment } from '../../src/core/types.ts';
import { createCertificate, eventually } from '../helpers/agent.ts';
import { startTestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';
import { connectorConfigKey } from '../../src/store/meta-catalogue.ts';

describe('command connector', () => {
  test('runs the script on the hub with the files in a private temp dir and certbot variables, which is removed afterwards', async (t) => {
    const dir = await tempDir(t);
    const seen = join(dir, 'seen.txt');
    const script = join(dir, 'push-to-appliance.sh');
    // What a vendor script would do: read the files from $RENEWED_LINEAGE and push them somewhere.
    await writeFile(
      script,
      [
        '#!/bin/sh',
        'set -eu',
        `out=${seen}`,
        'echo "lineage=$RENEWED_LINEAGE" > "$out"',
        'echo "domains=$RENEWED_DOMAINS" >> "$out"',
        'echo "dir_mode=$(stat -c %a "$RENEWED_LINEAGE")" >> "$out"',
        'echo "key_mode=$(stat -c %a "$RENEWED_LINEAGE/key.pem")" >> "$out"',
        'cp "$RENEWED_LINEAGE/fullchain.pem" ' + join(dir, 'pushed.pem'),
        '',
      ].join('\n'),
    );
    await chmod(script, 0o755);
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/endpoints', { name: 'appliance', kind: 'connector' });
    await hub.client.put('/api/v1/endpoints/appliance/connector', { kind: 'command' });
    await createCertificate(hub, 'web', ['web.test', 'www.web.test']);
    const sub = await hub.client.post<{ id: string }>('/api/v1/subscriptions', {
      endpoint: 'appliance',
      certificate: 'web',
      outputs: [
        { path: '/etc/appliance/fullchain.pem', format: 'fullchain' },
        { path: '/etc/appliance/key.pem', format: 'key' },
      ],
      reload: script,
    });
    const v1 = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!;
    const d = (await eventually(async () => {
      const x = await hub.ctx.store.getDeployment(sub.id, v1.id);
      return x && ['reloaded', 'failed', 'rolled_back'].includes(x.state) ? x : undefined;
    }, 30_000)) as Deployment;
    assert.equal(d.state, 'reloaded', JSON.stringify(d));
    const facts = Object.fromEntries(
      (await readFile(seen, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => l.split('=', 2)),
    );
    assert.equal(facts.domains, 'web.test www.web.test');
    assert.equal(facts.dir_mode, '700');
    assert.equal(facts.key_mode, '600');
    assert.equal(await readFile(join(dir, 'pushed.pem'), 'utf8'), v1.certPem + v1.chainPem);
    await assert.rejects(readFile(join(facts.lineage, 'key.pem')), /ENOENT/, 'the temp dir is gone');

    // Deleting the endpoint takes its connector settings with it.
    const id = (await hub.ctx.store.getEndpoint('appliance'))!.id;
    assert.ok(await hub.ctx.store.getMeta(connectorConfigKey(id)));
    await hub.client.delete('/api/v1/endpoints/appliance');
    await eventually(async () => (await hub.ctx.store.getMeta(connectorConfigKey(id))) === undefined, 10_000);
  });
});
