import { X509Certificate, createPrivateKey } from 'node:crypto';
import { systemClock } from '../core/clock.ts';
import { CertfleetError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { certMatchesKey, fingerprintOf } from '../pki/inspect.ts';
import {
  META,
  META_FAMILIES,
  accountKeyContext,
  connectorRecordsContext,
  connectorSecretContext,
  accountMetaKey,
  acmeOrderKeyContext,
  metaEntryOf,
  versionKeyContext,
  type MetaEntry,
} from '../store/meta-catalogue.ts';
import { loadMasterKey, unwrapDataKey, type Sealer } from '../store/sealing.ts';
import type { Store } from '../store/store.ts';
import { openDataDir } from './data-dir.ts';

/** One checked item: a meta key, a version's key, or a relation between items (the CA chain). */
export interface StoreCheckRow {
  item: string;
  key: string;
  ok: boolean;
  detail: string;
}

export interface StoreCheckReport {
  ok: boolean;
  rows: StoreCheckRow[];
  /** What the store holds; a backup's manifest records these and its verify compares them. */
  counts: {
    metaKeys: number;
    certificates: number;
    versions: number;
    acmeAccounts: number;
    /** Orders being finalized (absent in backups made before certfleet checked them). */
    acmeOrders?: number;
  };
}

/** Keys every initialised hub store has: without them its secrets or its CA are gone. */
const REQUIRED = [
  META.dataKey,
  META.internalCaRoot,
  META.internalCaRootKey,
  META.internalCaIntermediate,
  META.internalCaIntermediateKey,
];

const message = (e: unknown) => (e instanceof CertfleetError || e instanceof Error ? e.message : String(e));

/**
 * Checks a hub store against the catalogue (src/store/meta-catalogue.ts): every meta key is one the catalogue
 * explains and holds what its entry says; every sealed item unseals with its context and, for a private key,
 * matches its certificate; the internal CA's chain is whole; every version's key matches its leaf. Used by
 * `certfleet hub check-store` and by backup verification on a restored copy. Reads only.
 */
export async function checkStore(
  store: Store,
  sealer: Sealer,
  opts: { masterKey?: Buffer } = {},
): Promise<StoreCheckReport> {
  const rows: StoreCheckRow[] = [];
  const meta = new Map((await store.listMeta()).map((m) => [m.key, m.value]));
  const add = (item: string, key: string, run: () => string) => {
    try {
      rows.push({ item, key, ok: true, detail: run() });
    } catch (e) {
      rows.push({ item, key, ok: false, detail: message(e) });
    }
  };

  for (const entry of REQUIRED) {
    if (!meta.has(entry.key)) {
      rows.push({ item: entry.what, key: entry.key, ok: false, detail: 'missing' });
    }
  }
  let acmeAccounts = 0;
  for (const [key, value] of meta) {
    const entry = metaEntryOf(key);
    if (!entry) {
      rows.push({
        item: 'unknown meta key',
        key,
        ok: false,
        detail: 'not in the catalogue (written by a newer certfleet, or by hand?)',
      });
      continue;
    }
    if (entry.check === 'sealed-acme-account') acmeAccounts++;
    add(entry.what, key, () => checkEntry(entry, key, value, meta, sealer, opts.masterKey));
  }

  const root = meta.get(META.internalCaRoot.key);
  const intermediate = meta.get(META.internalCaIntermediate.key);
  if (root && intermediate) {
    add('internal CA chain: the intermediate is signed by the root', META.internalCaIntermediate.key, () =>
      issuedBy(intermediate, root),
    );
    const hubTls = meta.get(META.hubTlsCert.key);
    if (hubTls) {
      add("hub TLS certificate is signed by the internal CA's intermediate", META.hubTlsCert.key, () =>
        issuedBy(hubTls, intermediate),
      );
    }
  }

  let versions = 0;
  const certificates = await store.listCertificates();
  for (const cert of certificates) {
    for (const version of await store.listVersions(cert.id)) {
      versions++;
      // The sealed key is read on its own: version rows handed to callers never carry it.
      const sealed = await store.sealedKeyOf(version.id);
      add(`private key of ${cert.name} (serial ${version.serial})`, `versions/${version.id}`, () => {
        if (fingerprintOf(version.certPem) !== version.fingerprint) {
          throw new Error('the stored certificate does not have the recorded fingerprint');
        }
        const keyPem = sealer.unseal(
          sealedOrThrow(version.id, sealed),
          versionKeyContext(cert.id, version.fingerprint),
        );
        if (!certMatchesKey(version.certPem, keyPem))
          throw new Error('the key does not match the certificate');
        return 'unseals and matches its certificate';
      });
    }
  }

  // An order being finalized keeps its key until the version is stored: it must open under its certificate, or the
  // next attempt could not resume the order (it would place a new one, a second certificate at the CA). An order
  // with no certificate is a first issuance whose hub died after finalize: adding the certificate again resumes it.
  const names = new Map(certificates.map((c) => [c.id, c.name]));
  const orders = await store.listAcmeOrders();
  for (const order of orders) {
    const name = names.get(order.certificateId);
    const of = name ?? `a new certificate for ${order.sans?.join(', ') ?? 'names not recorded'}`;
    add(
      `key of the ACME order being finalized for ${of} (${order.issuer})`,
      `acme_orders/${order.certificateId}`,
      () => {
        createPrivateKey(sealer.unseal(order.sealedKey, acmeOrderKeyContext(order.certificateId)));
        return name
          ? 'unseals under its certificate'
          : 'unseals; its first issuance did not complete: resumed when a certificate with these names is added';
      },
    );
  }

  return {
    ok: rows.every((r) => r.ok),
    rows,
    counts: {
      metaKeys: meta.size,
      certificates: certificates.length,
      versions,
      acmeAccounts,
      acmeOrders: orders.length,
    },
  };
}

function sealedOrThrow(versionId: string, sealed: string | undefined): string {
  if (!sealed) throw new Error(`version ${versionId} has no sealed key`);
  return sealed;
}

function checkEntry(
  entry: MetaEntry,
  key: string,
  value: string,
  meta: Map<string, string>,
  sealer: Sealer,
  masterKey: Buffer | undefined,
): string {
  switch (entry.check) {
    case 'counter':
      if (!/^\d+$/.test(value)) throw new Error(`not a counter: ${JSON.stringify(value.slice(0, 20))}`);
      return value;
    case 'timestamp':
      if (Number.isNaN(Date.parse(value))) throw new Error('not a time');
      return value;
    case 'json':
      JSON.parse(value);
      return 'JSON';
    case 'certificate': {
      const x = new X509Certificate(value);
      return `${x.subject.replaceAll('\n', ', ')}, until ${new Date(x.validTo).toISOString()}`;
    }
    case 'sealed-key-for-certificate': {
      const keyPem = sealer.unseal(value, entry.sealContext!);
      const certPem = meta.get(entry.pairedWith!);
      if (!certPem) throw new Error(`its certificate (${entry.pairedWith}) is missing`);
      if (!certMatchesKey(certPem, keyPem)) throw new Error(`does not match ${entry.pairedWith}`);
      return `unseals and matches ${entry.pairedWith}`;
    }
    case 'wrapped-data-key':
      if (!masterKey) return 'not checked here (needs the master key)';
      unwrapDataKey(masterKey, value);
      return 'unwraps under the master key';
    case 'sealed-acme-account': {
      const account = JSON.parse(value) as { directoryUrl?: string; accountUrl?: string; sealedKey?: string };
      if (!account.directoryUrl || !account.sealedKey) throw new Error('no directoryUrl or sealedKey');
      if (accountMetaKey(account.directoryUrl) !== key) {
        throw new Error(`stored under the key of another directory than ${account.directoryUrl}`);
      }
      createPrivateKey(sealer.unseal(account.sealedKey, accountKeyContext(account.directoryUrl)));
      return `${account.directoryUrl}: account key unseals`;
    }
    case 'sealed-connector-settings': {
      const endpointId = key.slice(META_FAMILIES.connectorSettings.key.length);
      const doc = JSON.parse(value) as { settings?: { kind?: string }; sealed?: Record<string, string> };
      if (!doc.settings?.kind) throw new Error('no connector kind');
      const names = Object.keys(doc.sealed ?? {});
      for (const name of names) sealer.unseal(doc.sealed![name], connectorSecretContext(endpointId, name));
      return `${doc.settings.kind} connector: ${names.length} secret(s) unseal`;
    }
    case 'sealed-connector-records': {
      const endpointId = key.slice(META_FAMILIES.connectorRecords.key.length);
      const records = JSON.parse(sealer.unseal(value, connectorRecordsContext(endpointId))) as object;
      // '@uploaded' (an http connector's uploaded files) is kept beside the records, not one of them.
      return `${Object.keys(records).filter((k) => !k.startsWith('@')).length} deploy record(s) unseal`;
    }
  }
}

function issuedBy(childPem: string, issuerPem: string): string {
  const child = new X509Certificate(childPem);
  const issuer = new X509Certificate(issuerPem);
  if (!child.checkIssued(issuer) || !child.verify(issuer.publicKey)) {
    throw new Error('the signature or the issuer name does not match');
  }
  return 'signature verifies';
}

/** Checks a hub data directory in place (master key as the hub reads it); creates nothing, writes nothing. */
export async function checkDataDir(opts: {
  dataDir: string;
  databaseUrl?: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
}): Promise<StoreCheckReport> {
  const { store, sealer } = await openDataDir({ ...opts, clock: systemClock, create: false });
  try {
    const masterKey = await loadMasterKey(opts.dataDir, opts.env, { create: false });
    return await checkStore(store, sealer, { masterKey });
  } finally {
    await store.close();
  }
}
