/**
 * How long a backup, a verify and a restore take for a hub with N certificates (default 10,000), each with one
 * version whose private key is sealed under its own context (so verify unseals and matches every one of them).
 *
 *   npm run bench -- backup [--certs 10000] [--runs 3]
 *
 * The fleet is written straight through the store (setup speed): 16 versions are issued by the internal CA, and
 * every other certificate stores one of their certificate/key pairs, its key sealed again for that certificate.
 * Then createBackup / verifyBackup / restoreBackup (the functions behind `certfleet backup ...`) run in this process
 * against the data directory, encrypted to a fresh X25519 recipient; wall time, file size and peak RSS per step.
 */
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackup } from '../src/backup/create-backup.ts';
import { restoreBackup, verifyBackup } from '../src/backup/restore-backup.ts';
import { systemClock } from '../src/core/clock.ts';
import { createLogger } from '../src/core/log.ts';
import { CertificateService } from '../src/hub/certificate-service.ts';
import { openHubContext } from '../src/hub/hub.ts';
import { versionKeyContext } from '../src/store/meta-catalogue.ts';

const POOL = 16;

const arg = (args: string[], name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const loadavg = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');

async function populate(dataDir: string, n: number): Promise<void> {
  const ctx = await openHubContext({ dataDir, logger: createLogger({ level: 'warn' }), env: {} });
  const { store, sealer } = ctx;
  try {
    const service = new CertificateService(ctx);
    const pool: Array<{ v: NonNullable<Awaited<ReturnType<typeof store.currentVersion>>>; keyPem: string }> =
      [];
    for (let i = 0; i < Math.min(POOL, n); i++) {
      const cert = await service.create(
        {
          name: `pool-${i}`,
          sans: [`pool-${i}.bench.test`],
          keyType: 'ecdsa-p256',
          issuer: 'internal',
          lifetimeDays: 30,
        },
        'bench',
      );
      const v = (await store.currentVersion(cert.id))!;
      pool.push({
        v,
        keyPem: sealer.unseal((await store.sealedKeyOf(v.id))!, versionKeyContext(cert.id, v.fingerprint)),
      });
    }
    for (let i = POOL; i < n; i++) {
      const name = `cert-${String(i).padStart(5, '0')}`;
      const cert = await store.createCertificate(
        { name, sans: [`${name}.bench.test`], keyType: 'ecdsa-p256', issuer: 'internal', lifetimeDays: 30 },
        'bench',
      );
      const { v, keyPem } = pool[i % POOL];
      await store.addVersion(
        cert.id,
        {
          serial: v.serial,
          fingerprint: v.fingerprint,
          notBefore: v.notBefore,
          notAfter: v.notAfter,
          certPem: v.certPem,
          chainPem: v.chainPem,
          sealedKey: sealer.seal(keyPem, versionKeyContext(cert.id, v.fingerprint)),
          issuer: 'internal',
        },
        'bench',
      );
    }
  } finally {
    await store.close();
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T; rssMb: number }> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  try {
    const value = await fn();
    return {
      ms: performance.now() - t0,
      value,
      rssMb: Math.round(Math.max(peak, process.memoryUsage().rss) / 2 ** 20),
    };
  } finally {
    clearInterval(sampler);
  }
}

export async function run(args: string[]): Promise<void> {
  const n = arg(args, 'certs', 10_000);
  const runs = arg(args, 'runs', 3);
  const root = await mkdtemp(join(tmpdir(), 'certfleet-bench-backup-'));
  const logger = createLogger({ level: 'warn' });
  try {
    const dataDir = join(root, 'data');
    const setup = await timed(() => populate(dataDir, n));
    const dbBytes = (await stat(join(dataDir, 'hub.db'))).size;
    process.stdout.write(
      `# ${n} certificates written in ${(setup.ms / 1000).toFixed(1)} s; hub.db ${(dbBytes / 2 ** 20).toFixed(1)} MiB\n` +
        `# ${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}, ${new Date().toISOString()}\n` +
        '| run | step | seconds | file MiB | peak RSS MiB | checks | loadavg |\n|---|---|---|---|---|---|---|\n',
    );
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    for (let r = 1; r <= runs; r++) {
      const out = join(root, `b${r}.age`);
      const load = await loadavg();
      const c = await timed(() =>
        createBackup({
          dataDir,
          out,
          sealTo: { recipients: [recipient] },
          env: {},
          clock: systemClock,
          logger,
        }),
      );
      const size = ((await stat(out)).size / 2 ** 20).toFixed(1);
      const row = (step: string, t: { ms: number; rssMb: number }, checks: string) =>
        process.stdout.write(
          `| ${r} | ${step} | ${(t.ms / 1000).toFixed(1)} | ${size} | ${t.rssMb} | ${checks} | ${load} |\n`,
        );
      row('create', c, `${c.value.manifest.counts.versions} versions`);
      const v = await timed(() => verifyBackup({ file: out, using: { identities: [identity] }, logger }));
      row('verify', v, `${v.value.report.rows.length} rows, ${v.value.report.ok ? 'all ok' : 'FAILED'}`);
      const target = join(root, `restored-${r}`);
      const rs = await timed(() =>
        restoreBackup({
          file: out,
          dataDir: target,
          using: { identities: [identity] },
          force: false,
          clock: systemClock,
          logger,
        }),
      );
      row('restore', rs, rs.value.report.ok ? 'all ok' : 'FAILED');
      await rm(target, { recursive: true, force: true });
      await rm(out, { force: true });
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
