import { CertfleetError } from '../core/errors.ts';
import type { Bundle } from '../core/types.ts';
import { certFormat } from './cert.ts';
import { chainFormat } from './chain.ts';
import { combinedFormat } from './combined.ts';
import { derFormat } from './der.ts';
import { fullchainFormat } from './fullchain.ts';
import { jksFormat } from './jks.ts';
import { keyRsaFormat } from './key-rsa.ts';
import { keyFormat } from './key.ts';
import type { OutputFormat, RenderOptions } from './output-format.ts';
import { pkcs12Format } from './pkcs12.ts';

/** Every output format by name. A new format is one module plus one line here. */
export const formatRegistry: ReadonlyMap<string, OutputFormat> = new Map(
  [
    certFormat,
    chainFormat,
    fullchainFormat,
    keyFormat,
    keyRsaFormat,
    derFormat,
    pkcs12Format,
    jksFormat,
    combinedFormat,
  ].map((f) => [f.name, f]),
);

export function listFormats(): Array<{ name: string; description: string }> {
  return [...formatRegistry.values()].map(({ name, description }) => ({ name, description }));
}

export function getFormat(name: string): OutputFormat {
  const format = formatRegistry.get(name);
  if (!format) {
    throw new CertfleetError(
      'VALIDATION_FAILED',
      `unknown output format "${name}"`,
      `use one of: ${[...formatRegistry.keys()].join(', ')}`,
    );
  }
  return format;
}

/** Renders one output file's contents. Throws CertfleetError for unknown formats and unrenderable bundles. */
export async function renderOutput(
  format: string,
  bundle: Bundle,
  opts: RenderOptions = {},
): Promise<Buffer> {
  return getFormat(format).render(bundle, opts);
}
