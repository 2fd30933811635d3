/**
 * Which certificates an emergency campaign reissues: by issuer, by a list of serials (the CA's incident list), by
 * the SHA-256 fingerprint of an intermediate in the current chain, or all. One selector at a time; what the
 * selector names must exist (an unknown issuer is an error, not an empty campaign).
 */
import { CertfleetError } from '../../core/errors.ts';
import type { Certificate } from '../../core/types.ts';
import { fingerprintOf, splitPemCertificates } from '../../pki/inspect.ts';
import type { CampaignSelector, CertificateRow } from '../../store/store.ts';
import type { HubContext } from '../hub-context.ts';

/** The selector as the API takes it: exactly one of the fields. */
export interface SelectorInput {
  issuer?: string;
  serials?: string[];
  intermediate?: string;
  all?: boolean;
}

export interface SelectedCertificate {
  certificate: Certificate;
  /** The current version (absent: none issued yet; the campaign issues a first one). */
  current?: CertificateRow['current'];
}

export interface Selection {
  selector: CampaignSelector;
  certificates: SelectedCertificate[];
  /** Serials that name no version of any certificate. */
  unknownSerials: string[];
  /** Serials of versions that are no longer current (already replaced): nothing to do for them. */
  replacedSerials: string[];
}

const SELECTOR_HINT = 'pass exactly one of --issuer NAME, --serials FILE, --intermediate SHA256, --all';

/** Serial numbers compare as openssl prints them: upper-case hex, no colons, no leading zeros. */
export function normalizeSerial(s: string): string {
  return s
    .trim()
    .replace(/[:\s]/g, '')
    .toUpperCase()
    .replace(/^0+(?=.)/, '');
}

/** One serial per line, hex with or without colons; blank lines and `#` comments are skipped. */
export function parseSerialList(text: string): string[] {
  const out: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    const serial = normalizeSerial(line);
    if (!/^[0-9A-F]+$/.test(serial))
      throw new CertfleetError(
        'USAGE',
        `line ${i + 1} of the serials file is not a hexadecimal serial number: "${line.slice(0, 80)}"`,
        'write one serial per line, hex with or without colons (e.g. 03:A1:FF or 03A1FF)',
      );
    out.push(serial);
  }
  return [...new Set(out)];
}

export function selectorOf(input: SelectorInput): CampaignSelector {
  const given = (['issuer', 'serials', 'intermediate', 'all'] as const).filter((k) =>
    k === 'all' ? input.all === true : input[k] !== undefined,
  );
  if (given.length !== 1)
    throw new CertfleetError(
      'USAGE',
      given.length === 0
        ? 'no certificates selected'
        : `choose one selector, not ${given.map((g) => `--${g}`).join(' and ')}`,
      SELECTOR_HINT,
    );
  const kind = given[0];
  if (kind === 'intermediate') {
    const fp = input.intermediate!.replace(/:/g, '').toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(fp))
      throw new CertfleetError(
        'USAGE',
        `"${input.intermediate}" is not a SHA-256 fingerprint`,
        'give 64 hex digits, with or without colons (`openssl x509 -noout -fingerprint -sha256 -in intermediate.pem`)',
      );
    return { kind, value: fp };
  }
  if (kind === 'serials' && input.serials!.length === 0)
    throw new CertfleetError('USAGE', 'the serials list is empty', 'list one serial per line');
  if (kind === 'issuer') return { kind, value: input.issuer! };
  return { kind };
}

/** Resolves a selector against the store: every certificate it names, with its current version. */
export async function selectCertificates(ctx: HubContext, input: SelectorInput): Promise<Selection> {
  const selector = selectorOf(input);
  const rows = (await ctx.store.certificateRows()).items;
  const pick = (keep: (r: CertificateRow) => boolean): SelectedCertificate[] =>
    rows
      .filter(keep)
      .map((r) => ({ certificate: r.certificate, ...(r.current ? { current: r.current } : {}) }));
  const base = { selector, unknownSerials: [], replacedSerials: [] };
  switch (selector.kind) {
    case 'all':
      return { ...base, certificates: pick(() => true) };
    case 'issuer': {
      const name = selector.value!;
      if (!ctx.issuers.has(name))
        throw new CertfleetError(
          'NOT_FOUND',
          `issuer "${name}" is not configured on this hub`,
          `use one of: ${[...ctx.issuers.keys()].join(', ')}`,
        );
      return { ...base, certificates: pick((r) => r.certificate.issuer === name) };
    }
    case 'intermediate': {
      const wanted = selector.value!;
      const hits = new Set<string>();
      for (const r of rows) {
        if (!r.current) continue;
        const v = await ctx.store.getVersion(r.current.id);
        const chain = v ? splitPemCertificates(v.chainPem) : [];
        if (chain.some((pem) => fingerprintOf(pem) === wanted)) hits.add(r.certificate.id);
      }
      return { ...base, certificates: pick((r) => hits.has(r.certificate.id)) };
    }
    case 'serials': {
      const wanted = new Set(input.serials!.map(normalizeSerial));
      const current = new Set<string>();
      const found = new Set<string>();
      for (const r of rows) {
        for (const v of await ctx.store.listVersions(r.certificate.id)) {
          const serial = normalizeSerial(v.serial);
          if (!wanted.has(serial)) continue;
          found.add(serial);
          if (v.id === r.current?.id) current.add(r.certificate.id);
        }
      }
      const currentSerials = new Set(
        rows.filter((r) => current.has(r.certificate.id)).map((r) => normalizeSerial(r.current!.serial)),
      );
      return {
        selector,
        certificates: pick((r) => current.has(r.certificate.id)),
        unknownSerials: [...wanted].filter((s) => !found.has(s)),
        replacedSerials: [...found].filter((s) => !currentSerials.has(s)),
      };
    }
  }
}
