import type { Certificate, CertificateVersion, Endpoint } from '../../core/types.ts';
import type { Store } from '../../store/store.ts';
import type { DesiredState } from '../../agent/wire.ts';

/**
 * Builds an endpoint's desired state. Certificates and their current versions are cached per revision, so when a
 * renewal wakes a thousand agents subscribed to one certificate the hub reads it once, not a thousand times.
 */
export class DesiredStateBuilder {
  private cacheRevision = -1;
  private readonly certs = new Map<string, Promise<{ cert?: Certificate; version?: CertificateVersion }>>();

  constructor(private readonly store: Store) {}

  private certificate(id: string, revision: number) {
    if (revision !== this.cacheRevision) {
      this.certs.clear();
      this.cacheRevision = revision;
    }
    let hit = this.certs.get(id);
    if (!hit) {
      hit = Promise.all([this.store.getCertificateById(id), this.store.currentVersion(id)]).then(
        ([cert, version]) => ({ cert, version }),
      );
      this.certs.set(id, hit);
    }
    return hit;
  }

  async build(endpoint: Endpoint): Promise<DesiredState> {
    // Read the revision first: anything committed later bumps it again and wakes the agent once more.
    const revision = await this.store.revision();
    const subs = await this.store.listSubscriptions({ endpointId: endpoint.id });
    const subscriptions = await Promise.all(
      subs.map(async (s) => {
        const { cert, version } = await this.certificate(s.certificateId, revision);
        return {
          subscriptionId: s.id,
          certificateName: cert?.name ?? '',
          sans: cert?.sans ?? [],
          spec: {
            outputs: s.outputs,
            ...(s.configTest ? { configTest: s.configTest } : {}),
            ...(s.reload ? { reload: s.reload } : {}),
            ...(s.window ? { window: s.window } : {}),
            ...(s.verify ? { verify: s.verify } : {}),
          },
          ...(version
            ? {
                version: {
                  id: version.id,
                  fingerprint: version.fingerprint,
                  serial: version.serial,
                  notAfter: version.notAfter,
                },
              }
            : {}),
        };
      }),
    );
    return { revision, endpointId: endpoint.id, endpointName: endpoint.name, subscriptions };
  }
}
