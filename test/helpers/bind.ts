import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import { freePort } from './pebble.ts';
import { reapChild } from './process-reaper.ts';

export interface Bind {
  port: number;
  zone: string;
  keyName: string;
  keySecret: string;
  stop(): Promise<void>;
}

/** A real BIND named on a free loopback port, authoritative for `zone`, accepting TSIG-signed updates. */
export async function startBind(zone = 'example.test'): Promise<Bind> {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-bind-'));
  const port = await freePort(true);
  const keyName = 'certfleet-test';
  const keySecret = randomBytes(32).toString('base64');
  await writeFile(
    join(dir, 'named.conf'),
    `key "${keyName}" { algorithm hmac-sha256; secret "${keySecret}"; };
controls { };
options {
  directory "${dir}";
  pid-file "${dir}/named.pid";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
};
zone "${zone}" { type primary; file "${dir}/zone.db"; update-policy { grant ${keyName} zonesub TXT; }; };
`,
  );
  await writeFile(
    join(dir, 'zone.db'),
    `$TTL 60\n@ IN SOA ns.${zone}. admin.${zone}. 1 60 60 600 60\n@ IN NS ns.${zone}.\nns IN A 127.0.0.1\n`,
  );
  const log: string[] = [];
  const child: ChildProcess = spawn('/usr/sbin/named', ['-g', '-c', join(dir, 'named.conf'), '-n', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (b) => log.push(String(b)));
  child.stderr!.on('data', (b) => log.push(String(b)));
  const forgetReaper = reapChild(child);
  const stop = async () => {
    forgetReaper();
    if (child.exitCode === null && child.signalCode === null) {
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await done;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const r = new Resolver({ timeout: 300, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`named exited: ${log.join('').slice(-1500)}`);
    }
    if (
      await r.resolveSoa(zone).then(
        () => true,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`named did not answer within 10 s: ${log.join('').slice(-1500)}`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  return { port, zone, keyName, keySecret, stop };
}
