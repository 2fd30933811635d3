import { hostname } from 'node:os';
import { inspectCertificate } from '../pki/inspect.ts';
import { generatePrivateKeyPem } from '../pki/keys.ts';
import { META } from '../store/meta-catalogue.ts';
import type { HubContext } from './hub-context.ts';

const META_CERT = META.hubTlsCert.key;
const META_KEY = META.hubTlsKey.key;

/** Names the hub's own HTTPS certificate covers: loopback, this host, the listen address, and any extras. */
export function hubTlsNames(listenHost: string, extra: string[] = []): string[] {
  const names = ['localhost', '127.0.0.1', '::1', hostname().toLowerCase(), ...extra];
  if (!['0.0.0.0', '::', ''].includes(listenHost)) names.push(listenHost);
  return [...new Set(names)];
}

/**
 * The hub serves HTTPS with a certificate from its own internal CA, so agents can pin the CA fingerprint given at
 * enrollment. Reused across restarts; re-issued when names change or a third of its lifetime remains.
 */
export async function hubTlsCertificate(
  ctx: HubContext,
  names: string[],
): Promise<{ cert: string; key: string }> {
  const { store, sealer, internalCa, clock } = ctx;
  const certPem = await store.getMeta(META_CERT);
  const sealedKey = await store.getMeta(META_KEY);
  if (certPem && sealedKey) {
    const info = inspectCertificate(certPem);
    const left = info.notAfter.getTime() - clock.now().getTime();
    const life = info.notAfter.getTime() - info.notBefore.getTime();
    if (
      names.every((n) => info.sans.includes(n === '::1' ? '0:0:0:0:0:0:0:1' : n) || info.sans.includes(n)) &&
      left > life / 3
    ) {
      return {
        cert: certPem + internalCa.intermediatePem,
        key: sealer.unseal(sealedKey, META.hubTlsKey.sealContext),
      };
    }
  }
  const key = await generatePrivateKeyPem('ecdsa-p256');
  const cert = await internalCa.signLeaf(key, names, 365, { serverAuth: true }, 'certfleet hub');
  await store.setMeta(META_KEY, sealer.seal(key, META.hubTlsKey.sealContext));
  await store.setMeta(META_CERT, cert);
  return { cert: cert + internalCa.intermediatePem, key };
}
