import { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier, Certificate, id_ce_authorityKeyIdentifier } from '@peculiar/asn1-x509';
import { CertfleetError } from '../../core/errors.ts';
import { fetchDirectory, type AcmeDirectory } from './directory.ts';
import { agentFor, rawRequest, retryAfterSeconds } from './transport.ts';

/** RFC 9773 section 4.1: base64url(AKI keyIdentifier) '.' base64url(serial DER content octets). */
export function certIdFromParts(keyIdentifier: Uint8Array, serialDer: Uint8Array): string {
  return `${Buffer.from(keyIdentifier).toString('base64url')}.${Buffer.from(serialDer).toString('base64url')}`;
}

/** The ARI certID of a certificate (used in renewalInfo URLs and the new-order `replaces` field). */
export function ariCertId(certPem: string): string {
  let cert: Certificate;
  try {
    cert = AsnConvert.parse(new X509Certificate(certPem).raw, Certificate);
  } catch (e) {
    throw new CertfleetError(
      'BAD_REQUEST',
      'cannot parse the certificate for its ARI certID',
      'pass a PEM certificate',
      {
        cause: e,
      },
    );
  }
  const ext = cert.tbsCertificate.extensions?.find((x) => x.extnID === id_ce_authorityKeyIdentifier);
  const keyId = ext
    ? AsnConvert.parse(ext.extnValue.buffer, AuthorityKeyIdentifier).keyIdentifier
    : undefined;
  if (!keyId) {
    throw new CertfleetError(
      'BAD_REQUEST',
      'the certificate has no Authority Key Identifier, so it has no ARI certID',
      'ARI only works for certificates from CAs that set the AKI extension',
    );
  }
  // serialNumber holds the INTEGER's content octets as encoded (a leading 0x00 stays, as RFC 9773 wants).
  return certIdFromParts(new Uint8Array(keyId.buffer), new Uint8Array(cert.tbsCertificate.serialNumber));
}

/** What a CA suggests for one certificate (RFC 9773 section 4.2). */
export interface RenewalInfo {
  suggestedWindow: { start: Date; end: Date };
  explanationURL?: string;
  /** From the Retry-After header: when to ask again. */
  retryAfterSeconds?: number;
}

export interface FetchRenewalInfoOptions {
  fetchImpl?: typeof fetch;
  /** Extra trust for the CA's TLS (used when fetchImpl is not given). */
  caPem?: string;
  signal?: AbortSignal;
}

/**
 * Asks the CA when to renew `certPem`. `directory` is the directory URL or an already fetched directory.
 * Returns undefined when the CA does not advertise renewalInfo.
 */
export async function fetchRenewalInfo(
  directory: string | AcmeDirectory,
  certPem: string,
  opts: FetchRenewalInfoOptions = {},
): Promise<RenewalInfo | undefined> {
  const agent = opts.fetchImpl ? undefined : agentFor(opts.caPem);
  try {
    const dir =
      typeof directory === 'string'
        ? await fetchDirectory(directory, { agent, signal: opts.signal })
        : directory;
    if (!dir.renewalInfo) return undefined;
    const url = `${dir.renewalInfo.replace(/\/+$/, '')}/${ariCertId(certPem)}`;
    let status: number, text: string, retryAfter: string | undefined;
    if (opts.fetchImpl) {
      const r = await opts.fetchImpl(url, { signal: opts.signal });
      [status, text, retryAfter] = [r.status, await r.text(), r.headers.get('retry-after') ?? undefined];
    } else {
      const r = await rawRequest(url, { agent, signal: opts.signal, timeoutMs: 15_000 });
      [status, text, retryAfter] = [r.status, r.body.toString('utf8'), r.headers['retry-after']];
    }
    if (status !== 200) {
      throw new CertfleetError(
        'ACME_ERROR',
        `renewalInfo ${url} answered HTTP ${status}`,
        'the CA may not know this certificate (issued by another CA?); renewal falls back to the lifetime rule',
        { details: { url, status } },
      );
    }
    return parseRenewalInfo(text, url, retryAfter);
  } finally {
    agent?.destroy();
  }
}

function parseRenewalInfo(text: string, url: string, retryAfter: string | undefined): RenewalInfo {
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const start = new Date(body?.suggestedWindow?.start);
  const end = new Date(body?.suggestedWindow?.end);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) {
    throw new CertfleetError(
      'ACME_ERROR',
      `renewalInfo ${url} sent no valid suggestedWindow`,
      'the CA answer is malformed; renewal falls back to the lifetime rule',
      { details: { url } },
    );
  }
  return {
    suggestedWindow: { start, end },
    ...(typeof body.explanationURL === 'string' ? { explanationURL: body.explanationURL } : {}),
    ...(retryAfterSeconds(retryAfter) !== undefined
      ? { retryAfterSeconds: retryAfterSeconds(retryAfter) }
      : {}),
  };
}
