import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { cliEnv } from './cli-agent.ts';
import { runCli } from './cli.ts';
import { startTestHub, type TestHub } from './hub.ts';

/** A hub with certificates web and api and endpoints web1 (one probe target) and web2, and the CLI env for it. */
export async function hubWithFleet(t: TestContext): Promise<{ hub: TestHub; env: NodeJS.ProcessEnv }> {
  const hub = await startTestHub(t);
  const env = cliEnv(hub);
  await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.example.test'] });
  await hub.client.post('/api/v1/certificates', { name: 'api', sans: ['api.example.test'] });
  await hub.client.post('/api/v1/endpoints', {
    name: 'web1',
    probeTargets: [{ host: '127.0.0.1', port: 443 }],
  });
  await hub.client.post('/api/v1/endpoints', { name: 'web2' });
  return { hub, env };
}

/** Runs the CLI and insists it exited 0 (stderr in the failure message). */
export const ok = async (args: string[], env: NodeJS.ProcessEnv) => {
  const r = await runCli(args, env);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r;
};

/** `subscribe` with every deployment option. */
export const FULL = [
  '--output',
  'fullchain:/etc/ssl/web/fullchain.pem',
  '--output',
  'key:/etc/ssl/web/key.pem',
  '--owner',
  'root',
  '--group',
  'ssl-cert',
  '--mode',
  '0640',
  '--output',
  'pkcs12:/etc/ssl/web/web.p12',
  '--password-ref',
  'env:WEB_P12_PASSWORD',
  '--config-test',
  'nginx -t',
  '--reload',
  'nginx -s reload',
  '--verify',
  '127.0.0.1:8443/web.example.test',
  '--window',
  '0 2 * * 1-5',
  '--window-duration',
  '2h',
  '--timezone',
  'Europe/Berlin',
];
