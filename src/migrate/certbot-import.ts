import { createPrivateKey } from 'node:crypto';
import { DAY_MS } from '../core/clock.ts';
import { nameSchema } from '../core/config-schema.ts';
import { errorMessage } from '../core/errors.ts';
import { sanProblem } from '../core/names.ts';
import type { Certificate } from '../core/types.ts';
import type { CertificateService } from '../hub/certificate-service.ts';
import type { HubContext } from '../hub/hub-context.ts';
import { certMatchesKey, inspectCertificate } from '../pki/inspect.ts';
import { keyTypeOf } from '../pki/keys.ts';
import type { Actor } from '../store/store.ts';
import { acmeIssuers, sameDirectory, type AcmeIssuerInfo } from './acme-issuer-info.ts';
import { adviceFor } from './certbot-advice.ts';
import type {
  CertbotAccount,
  CertbotImportRequest,
  CertbotImportResult,
  CertbotLineage,
  ImportedAccount,
  ImportedCertificate,
  UnmappedItem,
} from './certbot-types.ts';

/**
 * Creates certfleet certificates from certbot lineages, each with its current version, and moves certbot's
 * ACME accounts into the matching issuers' account stores. Idempotent: a leaf already stored is left alone, an
 * existing account is never overwritten. With `dryRun`, nothing is written and the statuses say what would be.
 */
export async function importCertbot(
  ctx: HubContext,
  certificates: CertificateService,
  req: CertbotImportRequest,
  actor: Actor,
): Promise<CertbotImportResult> {
  const dryRun = Boolean(req.dryRun);
  const issuers = acmeIssuers(ctx.issuers);
  const result: CertbotImportResult = { dryRun, certificates: [], accounts: [], unmapped: [] };
  for (const lineage of req.lineages) {
    try {
      const r = await importLineage(ctx, certificates, lineage, issuers, dryRun, actor, result.unmapped);
      if (r) result.certificates.push(r);
    } catch (e) {
      result.unmapped.push({
        lineage: lineage.name,
        item: 'certificate',
        why: errorMessage(e),
        fix: 'fix the lineage (see `certbot certificates`) and import again',
      });
    }
  }
  for (const account of req.accounts) {
    result.accounts.push(await importAccount(account, issuers, dryRun, result.unmapped));
  }
  if (
    !dryRun &&
    (result.certificates.some((c) => c.status !== 'unchanged') ||
      result.accounts.some((a) => a.status === 'imported'))
  ) {
    await ctx.store.appendEvent({
      actor,
      kind: 'import.certbot',
      subject: 'import:certbot',
      data: {
        certificates: result.certificates.map((c) => ({
          name: c.name,
          status: c.status,
          fingerprint: c.fingerprint,
        })),
        accounts: result.accounts.map((a) => ({ server: a.server, status: a.status, issuer: a.issuer })),
        unmapped: result.unmapped.length,
      },
    });
  }
  return result;
}

async function importLineage(
  ctx: HubContext,
  certificates: CertificateService,
  lineage: CertbotLineage,
  issuers: AcmeIssuerInfo[],
  dryRun: boolean,
  actor: Actor,
  unmapped: UnmappedItem[],
): Promise<ImportedCertificate | undefined> {
  const skip = (item: string, why: string, fix: string) => {
    unmapped.push({ lineage: lineage.name, item, why, fix });
    return undefined;
  };
  const name = lineage.name.toLowerCase();
  if (!nameSchema.safeParse(name).success) {
    return skip(
      'lineage name',
      `"${lineage.name}" is not a valid certfleet certificate name (1-63 lower-case letters, digits, ".", "_", "-")`,
      'rename the lineage with `certbot rename` (or create the certificate by hand with `certfleet cert add`)',
    );
  }
  const info = inspectCertificate(lineage.certPem);
  const bad = info.sans.map((s) => [s, sanProblem(s)] as const).find(([, p]) => p);
  if (!info.sans.length || bad) {
    return skip(
      'names',
      bad
        ? `"${bad[0]}" is not a name certfleet accepts: it ${bad[1]}`
        : 'the certificate has no subject alternative names',
      'create the certificate by hand with valid names',
    );
  }
  if (!certMatchesKey(lineage.certPem, lineage.keyPem)) {
    return skip(
      'privkey.pem',
      'the private key does not belong to cert.pem (the live/ symlinks point at different archive versions)',
      'repair the lineage with `certbot update_symlinks`, then import again',
    );
  }
  const keyType = keyTypeOf(createPrivateKey(lineage.keyPem));
  if (!keyType) {
    return skip(
      'key type',
      'the key is neither ECDSA P-256/P-384 nor RSA 2048/3072/4096',
      'create the certificate by hand with a supported key type; it is issued anew',
    );
  }
  const server = lineage.renewal?.server;
  const issuer = server ? issuers.find((i) => sameDirectory(i.directoryUrl, server)) : undefined;
  if (server && !issuer) {
    unmapped.push({
      lineage: lineage.name,
      item: `server ${server}`,
      why: 'no ACME issuer in the hub config has this directory URL, so the certificate stays on issuer "internal" (renewals would come from the hub CA)',
      fix: `add an ACME issuer with directoryUrl: ${server} to the hub config, restart the hub and import again (the issuer is updated)`,
    });
  }
  unmapped.push(...adviceFor(lineage.name, lineage.renewal, info.sans));
  const issuerName = issuer?.name ?? 'internal';
  const lifetimeDays = Math.max(1, Math.round((info.notAfter.getTime() - info.notBefore.getTime()) / DAY_MS));
  const row = (status: ImportedCertificate['status'], cert?: Certificate): ImportedCertificate => ({
    name,
    status,
    sans: cert?.sans ?? info.sans,
    keyType: cert?.keyType ?? keyType,
    issuer: cert?.issuer ?? issuerName,
    fingerprint: info.fingerprint,
    notAfter: info.notAfter.toISOString(),
  });

  let cert = await ctx.store.getCertificate(name);
  if (!cert) {
    if (dryRun) return row('would-create');
    cert = await ctx.store.createCertificate(
      { name, sans: info.sans, keyType, issuer: issuerName, lifetimeDays },
      actor,
    );
    try {
      await certificates.importVersion(cert, lineage, actor);
    } catch (e) {
      // Never leave a certificate without its version behind: the next import starts clean.
      await ctx.store.deleteCertificate(name, actor, { force: true }).catch(() => undefined);
      throw e;
    }
    return row('created', cert);
  }
  const versions = await ctx.store.listVersions(cert.id);
  const known = versions.some((v) => v.fingerprint === info.fingerprint);
  const issuerUpgrade = cert.issuer === 'internal' && issuer !== undefined;
  const current = await ctx.store.currentVersion(cert.id);
  const older = !known && current !== undefined && new Date(current.notAfter) >= info.notAfter;
  if (older) {
    unmapped.push({
      lineage: lineage.name,
      item: 'version',
      why: `certfleet already holds a newer version of "${name}" (expires ${current!.notAfter}) than certbot's (expires ${info.notAfter.toISOString()})`,
      fix: 'nothing: the newer version stays current',
    });
  }
  if ((known || older) && !issuerUpgrade) return row('unchanged', cert);
  if (dryRun) return row('would-update', cert);
  if (issuerUpgrade) cert = await ctx.store.updateCertificate(name, { issuer: issuer!.name }, actor);
  if (!known && !older) await certificates.importVersion(cert, lineage, actor);
  return row('updated', cert);
}

async function importAccount(
  account: CertbotAccount,
  issuers: AcmeIssuerInfo[],
  dryRun: boolean,
  unmapped: UnmappedItem[],
): Promise<ImportedAccount> {
  const base = { server: account.server, id: account.id };
  const issuer = issuers.find((i) => sameDirectory(i.directoryUrl, account.server));
  if (!issuer?.accountStore) {
    unmapped.push({
      item: `account ${account.id}`,
      why: issuer
        ? `issuer "${issuer.name}" has no account store certfleet can write to`
        : `no ACME issuer in the hub config has directory ${account.server}`,
      fix: 'nothing needed: certfleet registers its own account on first issuance; add the issuer and import again to keep this one',
    });
    return { ...base, status: 'not mapped' };
  }
  const stored = await issuer.accountStore.load(issuer.directoryUrl);
  if (stored) {
    const same = stored.accountUrl !== undefined && stored.accountUrl === account.uri;
    if (!same) {
      unmapped.push({
        item: `account ${account.id}`,
        why: `issuer "${issuer.name}" already has an account (${stored.accountUrl ?? 'not yet registered'}); certfleet keeps one account per directory`,
        fix: "nothing needed; certbot's account stays valid at the CA and can be deactivated with certbot if unused",
      });
    }
    return { ...base, status: 'unchanged', issuer: issuer.name };
  }
  if (dryRun) return { ...base, status: 'would-import', issuer: issuer.name };
  await issuer.accountStore.save(issuer.directoryUrl, {
    accountKeyPem: account.keyPem,
    ...(account.uri ? { accountUrl: account.uri } : {}),
  });
  return { ...base, status: 'imported', issuer: issuer.name };
}
