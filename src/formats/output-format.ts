import type { Bundle } from '../core/types.ts';

export interface RenderOptions {
  /** Required by pkcs12 and jks; never logged or put in an error. */
  password?: string;
  /** pkcs12 only: 3DES + SHA-1 MAC for consumers older than OpenSSL 1.1.1 / Java 8u301 / Windows Server 2019. */
  legacy?: boolean;
  /** pkcs12 friendlyName and jks entry alias; defaults to "certfleet". */
  alias?: string;
}

/**
 * One file layout an endpoint can consume. Contract: `render` is pure (no I/O, no global state), returns the
 * complete file contents, and throws CertfleetError (never a bare Error) for a bundle or option it cannot render.
 * Formats that embed randomness (salts, IVs) give different bytes per call; compare them by parsing, not by bytes.
 */
export interface OutputFormat {
  name: string;
  description: string;
  render(bundle: Bundle, opts: RenderOptions): Promise<Buffer>;
}

export const DEFAULT_ALIAS = 'certfleet';
