import { createPrivateKey } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { CertfleetError, errorMessage } from '../core/errors.ts';
import { splitPemCertificates } from '../pki/inspect.ts';
import type {
  CertbotAccount,
  CertbotLineage,
  CertbotReadProblem,
  CertbotRenewalParams,
} from './certbot-types.ts';
import { list, parseConfigObj, str } from './configobj.ts';

export interface CertbotDirectory {
  lineages: CertbotLineage[];
  accounts: CertbotAccount[];
  problems: CertbotReadProblem[];
}

/**
 * Reads a certbot config directory (/etc/letsencrypt): every live/<lineage>/ (following the symlinks into
 * archive/), its renewal/<lineage>.conf, and every account under accounts/. A lineage that cannot be read is
 * reported in `problems`; only a missing or unreadable directory throws.
 */
export async function readCertbotDirectory(dir: string): Promise<CertbotDirectory> {
  const liveDir = join(dir, 'live');
  let names: string[];
  try {
    names = (await readdir(liveDir, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch (e) {
    throw new CertfleetError(
      'NOT_FOUND',
      `cannot read ${liveDir}: ${errorMessage(e)}`,
      "pass certbot's config directory (the one holding live/, renewal/ and accounts/, usually /etc/letsencrypt); run as a user that may read it",
    );
  }
  const lineages: CertbotLineage[] = [];
  const problems: CertbotReadProblem[] = [];
  for (const name of names.sort()) {
    try {
      lineages.push(await readLineage(dir, name));
    } catch (e) {
      problems.push({
        item: `live/${name}`,
        why: errorMessage(e),
        fix: 'check the lineage with `certbot certificates`; fix or delete it, then import again',
      });
    }
  }
  const accounts = await readAccounts(join(dir, 'accounts'), problems);
  return { lineages, accounts, problems };
}

async function readLineage(dir: string, name: string): Promise<CertbotLineage> {
  const live = join(dir, 'live', name);
  const read = (f: string) => readFile(join(live, f), 'utf8'); // follows the symlinks into archive/
  const [certFile, chainFile, keyPem] = await Promise.all([
    read('cert.pem'),
    read('chain.pem'),
    read('privkey.pem'),
  ]);
  const [certPem] = splitPemCertificates(certFile);
  if (!certPem) throw new Error('cert.pem holds no certificate');
  let renewal: CertbotRenewalParams | undefined;
  try {
    renewal = parseRenewalConf(await readFile(join(dir, 'renewal', `${name}.conf`), 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return {
    name,
    certPem,
    chainPems: splitPemCertificates(chainFile),
    keyPem,
    ...(renewal ? { renewal } : {}),
  };
}

/** The renewal parameters of one renewal/<lineage>.conf. */
export function parseRenewalConf(text: string): CertbotRenewalParams {
  const p = parseConfigObj(text).sections.renewalparams;
  const webrootMap: Record<string, string> = {};
  for (const [domain, path] of Object.entries(p?.sections.webroot_map?.values ?? {})) {
    webrootMap[domain] = Array.isArray(path) ? path[0] : path;
  }
  const pick = (key: string) => str(p, key) || undefined;
  const out: CertbotRenewalParams = { webrootPath: list(p, 'webroot_path'), webrootMap };
  const fields: Array<[keyof CertbotRenewalParams, string]> = [
    ['authenticator', 'authenticator'],
    ['installer', 'installer'],
    ['server', 'server'],
    ['account', 'account'],
    ['keyType', 'key_type'],
    ['ellipticCurve', 'elliptic_curve'],
    ['rsaKeySize', 'rsa_key_size'],
    ['preHook', 'pre_hook'],
    ['postHook', 'post_hook'],
    ['deployHook', 'renew_hook'],
    ['manualAuthHook', 'manual_auth_hook'],
    ['manualCleanupHook', 'manual_cleanup_hook'],
    ['preferredChallenges', 'pref_challs'],
  ];
  for (const [field, key] of fields) {
    const v = pick(key);
    if (v && v !== 'None') (out as unknown as Record<string, unknown>)[field] = v;
  }
  const deploy = pick('deploy_hook');
  if (!out.deployHook && deploy && deploy !== 'None') out.deployHook = deploy;
  return out;
}

/** accounts/<host[:port]>/<path...>/<id>/{regr.json, private_key.json, meta.json}. */
async function readAccounts(root: string, problems: CertbotReadProblem[]): Promise<CertbotAccount[]> {
  const dirs: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 6) return;
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    if (entries.some((e) => e.name === 'private_key.json')) return void dirs.push(d);
    for (const e of entries) if (e.isDirectory()) await walk(join(d, e.name), depth + 1);
  };
  await walk(root, 0);
  const accounts: CertbotAccount[] = [];
  for (const d of dirs.sort()) {
    const parts = relative(root, d).split(sep);
    const id = parts.pop()!;
    const server = `https://${parts.join('/')}`;
    try {
      const jwk = JSON.parse(await readFile(join(d, 'private_key.json'), 'utf8'));
      const keyPem = createPrivateKey({ key: jwk, format: 'jwk' }).export({
        type: 'pkcs8',
        format: 'pem',
      }) as string;
      let uri: string | undefined;
      try {
        uri = JSON.parse(await readFile(join(d, 'regr.json'), 'utf8')).uri;
      } catch {
        uri = undefined;
      }
      accounts.push({ server, id, keyPem, ...(uri ? { uri } : {}) });
    } catch (e) {
      // The message of a JWK parse error never contains the key material.
      problems.push({
        item: `account ${id} (${server})`,
        why: `cannot read its key: ${errorMessage(e)}`,
        fix: 'certfleet registers a new account for that CA on first issuance; nothing to do unless you need this one',
      });
    }
  }
  return accounts;
}
