import type { Agent } from 'node:https';
import { CertfleetError } from '../../core/errors.ts';
import { rawRequest } from './transport.ts';

/** The ACME directory (RFC 8555 section 7.1.1) plus ARI's `renewalInfo` (RFC 9773 section 4). */
export interface AcmeDirectory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  revokeCert?: string;
  keyChange?: string;
  renewalInfo?: string;
  meta?: {
    termsOfService?: string;
    externalAccountRequired?: boolean;
    /** ACME profiles (draft-aaron-acme-profiles): name → human description. */
    profiles?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** The profile names a directory advertises (none when the CA predates profiles). */
export function offeredProfiles(dir: AcmeDirectory): string[] {
  const profiles = dir.meta?.profiles;
  return profiles && typeof profiles === 'object' ? Object.keys(profiles) : [];
}

/** Fetches and checks a directory; anything that is not one becomes a clear error. */
export async function fetchDirectory(
  url: string,
  opts: { agent?: Agent; signal?: AbortSignal } = {},
): Promise<AcmeDirectory> {
  const res = await rawRequest(url, { agent: opts.agent, signal: opts.signal, timeoutMs: 15_000 });
  if (res.status !== 200) {
    throw new CertfleetError(
      'ACME_ERROR',
      `the ACME directory ${url} answered HTTP ${res.status}`,
      'check the directory URL (it usually ends in /directory or /dir)',
      { details: { url, status: res.status } },
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(res.body.toString('utf8'));
  } catch {
    body = undefined;
  }
  const d = body as Partial<AcmeDirectory> | undefined;
  const missing = (['newNonce', 'newAccount', 'newOrder'] as const).filter((k) => typeof d?.[k] !== 'string');
  if (!d || typeof d !== 'object' || missing.length) {
    throw new CertfleetError(
      'ACME_ERROR',
      `${url} is not an ACME directory (${d && typeof d === 'object' ? `missing ${missing.join(', ')}` : `got ${res.headers['content-type'] ?? 'no content type'}, ${res.body.length} bytes that are not JSON`})`,
      'check the directory URL: it must point at the ACME directory document of the CA',
      { details: { url } },
    );
  }
  return d as AcmeDirectory;
}
