/**
 * certbot compatibility, end to end: `subscribe --certbot-lineage DIR` makes the real agent write certbot's four
 * lineage files into DIR and run the deploy hook with RENEWED_LINEAGE and RENEWED_DOMAINS, so an unchanged
 * certbot deploy hook (one that reads the four files and checks the key matches the certificate with openssl)
 * succeeds.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { eventually } from '../helpers/agent.ts';
import { cliEnv, startCliAgent } from '../helpers/cli-agent.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';

/** A deploy hook as certbot users write them: only $RENEWED_LINEAGE and $RENEWED_DOMAINS, and openssl. */
const CERTBOT_HOOK = `#!/bin/sh
set -eu
cd "$RENEWED_LINEAGE"
for f in cert.pem privkey.pem chain.pem fullchain.pem; do
  [ -s "$f" ] || { echo "hook: $f missing in $RENEWED_LINEAGE" >&2; exit 1; }
done
cert_key=$(openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)
priv_key=$(openssl pkey -in privkey.pem -pubout -outform DER | sha256sum)
[ "$cert_key" = "$priv_key" ] || { echo "hook: privkey.pem does not match cert.pem" >&2; exit 1; }
cat cert.pem chain.pem | cmp -s - fullchain.pem || { echo "hook: fullchain.pem is not cert.pem + chain.pem" >&2; exit 1; }
openssl verify -partial_chain -CAfile chain.pem cert.pem >/dev/null
printf '%s\\n%s\\n' "$RENEWED_LINEAGE" "$RENEWED_DOMAINS" > "$HOOK_LOG"
`;

describe('certbot lineage', () => {
  test('the agent writes the four files into the lineage and an unchanged certbot deploy hook succeeds', async (t) => {
    const hub = await startTestHub(t);
    const env = cliEnv(hub);
    const dir = await tempDir(t);
    const lineage = join(dir, 'live', 'web');
    const hook = join(dir, 'deploy-hook.sh');
    const hookLog = join(dir, 'hook.log');
    // Like any output directory, the lineage exists already (certbot made it; the agent creates no directories).
    await mkdir(lineage, { recursive: true });
    await writeFile(hook, CERTBOT_HOOK);
    await chmod(hook, 0o755);
    const cert = await runCli(
      ['cert', 'add', 'web', '--san', 'web.example.test', '--san', 'www.example.test'],
      env,
    );
    assert.equal(cert.code, 0, cert.stderr);
    await startCliAgent(t, hub, 'web1');

    const sub = await runCli(
      ['subscribe', 'web1', 'web', '--certbot-lineage', lineage, '--reload', `HOOK_LOG=${hookLog} ${hook}`],
      env,
    );
    assert.equal(sub.code, 0, sub.stderr);
    const shown = await runCli(['subscription', 'show', 'web1/web'], env);
    assert.match(shown.stdout, new RegExp(`certbot lineage\\s+${lineage} \\(RENEWED_LINEAGE for hooks\\)`));

    const state = async () =>
      JSON.parse((await runCli(['--json', 'subscription', 'show', 'web1/web'], env)).stdout).deployment;
    const done = await eventually(
      async () => {
        const d = await state();
        return ['reloaded', 'failed', 'rolled_back'].includes(d?.state) && d;
      },
      90_000,
      'the deployment to finish',
    );
    assert.equal(done.state, 'reloaded', JSON.stringify(done));
    assert.deepEqual((await readFile(hookLog, 'utf8')).split('\n'), [
      lineage,
      'web.example.test www.example.test',
      '',
    ]);
    assert.equal((await stat(join(lineage, 'privkey.pem'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(lineage, 'fullchain.pem'))).mode & 0o777, 0o644);
    const [current] = JSON.parse((await runCli(['--json', 'cert', 'list'], env)).stdout);
    const written = new X509Certificate(await readFile(join(lineage, 'cert.pem')));
    assert.equal(written.fingerprint256.replaceAll(':', '').toLowerCase(), current.current.fingerprint);

    // An apply file says the same with `certbotLineage`, and finds nothing to change.
    const file = join(dir, 'certfleet.yaml');
    await writeFile(
      file,
      [
        'subscriptions:',
        '  - endpoint: web1',
        '    certificate: web',
        `    certbotLineage: ${lineage}`,
        `    reload: HOOK_LOG=${hookLog} ${hook}`,
        '',
      ].join('\n'),
    );
    const applied = await runCli(['apply', '-f', file], env);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /unchanged\s+subscription\s+web1\/web/);

    const relative = await runCli(['subscribe', 'web1', 'web', '--certbot-lineage', 'live/web'], env);
    assert.equal(relative.code, 2);
    assert.match(relative.stderr, /certbotLineage: must be an absolute directory/);
  });
});
