import { systemClock, type Clock } from '../core/clock.ts';
import { CertfleetError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { sanProblem } from '../core/names.ts';
import { writePrivateFile } from '../core/private-file.ts';
import { InternalCa } from '../issuers/internal/internal-ca.ts';
import { inspectCertificate } from '../pki/inspect.ts';
import { generatePrivateKeyPem } from '../pki/keys.ts';
import { openDataDir } from './data-dir.ts';

export const PROXY_CERT_ACTOR = 'cli:proxy-cert';

/**
 * `certfleet hub proxy-cert`: a TLS certificate for the proxy that terminates TLS in front of `--no-tls` hubs
 * (docs/ha.md), issued by the hub's internal CA. Agents pin that CA at enrollment and trust nothing else, so the
 * certificate they meet at the proxy must chain to it, and the CA's keys are sealed in the store: only the hub's
 * operator (data directory and master key) can have one made. Written as one PEM file, 0600: the leaf, the
 * intermediate, then a fresh ECDSA P-256 key (HAProxy's `crt`; nginx reads the same file as `ssl_certificate` and
 * `ssl_certificate_key`). The key exists only in that file; the issuance is an audit event. Keeping it renewed
 * afterwards: docs/ha.md (a certificate subscribed to by an agent on the proxy's host).
 */
export async function writeProxyCertificate(opts: {
  dataDir: string;
  databaseUrl?: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** DNS names or IP addresses the agents and clients use for the proxy. */
  names: string[];
  lifetimeDays: number;
  out: string;
  clock?: Clock;
}): Promise<{ path: string; names: string[]; notAfter: string; fingerprint: string }> {
  if (!opts.names.length) {
    throw new CertfleetError(
      'USAGE',
      'hub proxy-cert needs at least one --name',
      'give the name (or address) agents use for the proxy, as in their --hub URL',
    );
  }
  for (const name of opts.names) {
    const problem = sanProblem(name);
    if (problem) {
      throw new CertfleetError(
        'INVALID_DNS_NAME',
        `--name "${name}" is not a valid DNS name or IP address: it ${problem}`,
        'give the name agents use for the proxy, as in their --hub URL',
      );
    }
  }
  const clock = opts.clock ?? systemClock;
  const { store, sealer } = await openDataDir({ ...opts, clock, create: false });
  try {
    const ca = await InternalCa.open(store, sealer, clock);
    const key = await generatePrivateKeyPem('ecdsa-p256');
    const leaf = await ca.signLeaf(
      key,
      opts.names,
      opts.lifetimeDays,
      { serverAuth: true },
      'certfleet hub proxy',
    );
    const info = inspectCertificate(leaf);
    // Atomically (a proxy reloading meanwhile reads the old file or the new one), 0600, no temp file left on failure.
    try {
      await writePrivateFile(opts.out, leaf + ca.intermediatePem + key);
    } catch (e) {
      throw new CertfleetError(
        'OUTPUT_WRITE_FAILED',
        `cannot write ${opts.out}: ${(e as Error).message}`,
        "give --out a file in an existing directory this user may write to (HAProxy's crt path)",
        { cause: e },
      );
    }
    await store.appendEvent({
      actor: PROXY_CERT_ACTOR,
      kind: 'hub.proxy_certificate_issued',
      subject: `proxy:${opts.names[0]}`,
      data: { names: opts.names, serial: info.serial, notAfter: info.notAfter.toISOString() },
    });
    return {
      path: opts.out,
      names: opts.names,
      notAfter: info.notAfter.toISOString(),
      fingerprint: info.fingerprint,
    };
  } finally {
    await store.close();
  }
}
