import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:https';
import { makeLocalhostTls } from './localhost-tls.ts';
import { reapChild } from './process-reaper.ts';

export interface PebbleOptions {
  /** Keep pebble's default of rejecting ~5% of nonces, to prove badNonce retries. */
  nonceReject?: boolean;
  /** Every challenge validates without contacting anything (load tests only). */
  alwaysValid?: boolean;
  /** Percent of new orders that reuse a valid authorization of the same account (Pebble's default: 50). */
  authzReuse?: number;
  /** Require external account binding; `hmacKey` is base64url, as a CA hands it out. */
  eab?: { kid: string; hmacKey: string };
}

export interface Pebble {
  directoryUrl: string;
  /** Trust anchor for pebble's API TLS (and for any proxy reusing tlsCertPem/tlsKeyPem). */
  caPem: string;
  /** A localhost/127.0.0.1 server certificate signed by caPem, for helpers that front pebble. */
  tlsCertPem: string;
  tlsKeyPem: string;
  /** Where pebble validates http-01: the test's http-01 listener must listen here on 127.0.0.1. */
  httpPort: number;
  tlsAlpnPort: number;
  /** challtestsrv's DNS server (UDP+TCP on 127.0.0.1); pebble resolves every name through it. */
  dnsPort: number;
  challtestsrvUrl: string;
  managementUrl: string;
  /** Pebble's issuing root: new on every start. */
  issuingRootPem(): Promise<string>;
  /** Serials (lower-case hex, as Pebble logs them) of every certificate it issued: one per finalized order. */
  issuedSerials(): string[];
  /** The pebble process's id (for its CPU time). */
  pid: number;
  /**
   * Go's dump of every goroutine's stack (SIGQUIT), for a Pebble that stopped answering: it shows who waits for
   * which lock. Pebble exits with it.
   */
  goroutineDump(): Promise<string>;
  stop(): Promise<void>;
}

/** A loopback port that is free for TCP (and UDP when asked) right now. */
export async function freePort(udpToo = false): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    if (!udpToo) return port;
    const ok = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

async function distinctPorts(n: number, udpFirst: number[]): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = await freePort(udpFirst.includes(out.length));
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

function getText(url: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function startProcess(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  log: string[],
  onOutput?: (text: string) => void,
): ChildProcess {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  reapChild(child);
  const keep = (b: Buffer) => {
    onOutput?.(b.toString());
    log.push(b.toString());
    if (log.length > 200) log.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts a real pebble-challtestsrv and pebble on free loopback ports. Call stop() in t.after / after; the
 * processes are also killed when the test process exits. Several instances can run side by side.
 */
export async function startPebble(opts: PebbleOptions = {}): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-pebble-'));
  const tls = await makeLocalhostTls(dir);
  const [acmePort, mgmtPort, httpPort, tlsAlpnPort, dnsPort, ctsMgmtPort] = await distinctPorts(6, [4]);
  const configPath = join(dir, 'pebble-config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: tls.certPath,
        privateKey: tls.keyPath,
        httpPort,
        tlsPort: tlsAlpnPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: Boolean(opts.eab),
        ...(opts.eab ? { externalAccountMACKeys: { [opts.eab.kid]: opts.eab.hmacKey } } : {}),
        domainBlocklist: ['blocked-domain.example'],
      },
    }),
  );
  const log: string[] = [];
  const cts = startProcess(
    '/usr/bin/pebble-challtestsrv',
    [
      '-defaultIPv4',
      '127.0.0.1',
      '-defaultIPv6',
      '',
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${ctsMgmtPort}`,
    ],
    process.env,
    log,
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PEBBLE_VA_NOSLEEP: '1',
    ...(opts.nonceReject ? {} : { PEBBLE_WFE_NONCEREJECT: '0' }),
    ...(opts.alwaysValid ? { PEBBLE_VA_ALWAYS_VALID: '1' } : {}),
    ...(opts.authzReuse !== undefined ? { PEBBLE_AUTHZREUSE: String(opts.authzReuse) } : {}),
  };
  if (opts.nonceReject) delete env.PEBBLE_WFE_NONCEREJECT;
  const issued: string[] = [];
  let dump: string[] | undefined;
  let partial = '';
  const pebble = startProcess(
    '/usr/bin/pebble',
    ['-config', configPath, '-dnsserver', `127.0.0.1:${dnsPort}`],
    env,
    log,
    (text) => {
      dump?.push(text);
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const m = /Issued certificate serial ([0-9a-f]+) for order/i.exec(line);
        if (m) issued.push(m[1].toLowerCase());
      }
    },
  );

  const agent = new Agent({ ca: tls.caPem, keepAlive: false });
  const directoryUrl = `https://localhost:${acmePort}/dir`;
  const managementUrl = `https://127.0.0.1:${mgmtPort}`;
  const challtestsrvUrl = `http://127.0.0.1:${ctsMgmtPort}`;
  const stop = async () => {
    agent.destroy();
    await Promise.allSettled([stopProcess(pebble), stopProcess(cts)]);
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (pebble.exitCode !== null || cts.exitCode !== null) {
      await stop();
      throw new Error(`pebble or challtestsrv exited early:\n${log.join('').slice(-2000)}`);
    }
    const [dirOk, ctsOk] = await Promise.all([
      getText(directoryUrl, agent).then(
        (r) => r.status === 200,
        () => false,
      ),
      fetch(`${challtestsrvUrl}/`).then(
        () => true,
        () => false,
      ),
    ]);
    if (dirOk && ctsOk) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`pebble did not answer at ${directoryUrl} within 15 s:\n${log.join('').slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const { readFile } = await import('node:fs/promises');
  const tlsCertPem = await readFile(tls.certPath, 'utf8');
  const tlsKeyPem = await readFile(tls.keyPath, 'utf8');

  return {
    directoryUrl,
    caPem: tls.caPem,
    tlsCertPem,
    tlsKeyPem,
    httpPort,
    tlsAlpnPort,
    dnsPort,
    challtestsrvUrl,
    managementUrl,
    async issuingRootPem() {
      const r = await getText(`${managementUrl}/roots/0`, agent);
      if (r.status !== 200) throw new Error(`pebble /roots/0 answered ${r.status}`);
      return r.body;
    },
    issuedSerials: () => [...issued],
    pid: pebble.pid ?? 0,
    async goroutineDump() {
      if (pebble.exitCode !== null || pebble.signalCode !== null) return '';
      dump = [];
      const exited = new Promise<void>((resolve) => pebble.once('exit', () => resolve()));
      pebble.kill('SIGQUIT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      return dump.join('');
    },
    stop,
  };
}
