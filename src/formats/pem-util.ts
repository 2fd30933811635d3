import type { KeyObject } from 'node:crypto';
import { CertfleetError } from '../core/errors.ts';
import { certificateReading, parseCertificate } from '../pki/inspect.ts';
import { ecPkcs8PemOf, parsePrivateKey } from '../pki/private-key.ts';
import type { Bundle } from '../core/types.ts';

/** Normalises one PEM block to end in exactly one newline so concatenations stay valid PEM. */
export function pemBlock(pem: string): string {
  return `${pem.trim()}\n`;
}

export function joinPem(pems: string[]): string {
  return pems.map(pemBlock).join('');
}

/**
 * The leaf and intermediates as DER, leaf first (read by hand for the usual certificates, else parsed by OpenSSL);
 * throws a CertfleetError naming which one is broken.
 */
export function chainDer(bundle: Bundle): Buffer[] {
  return [bundle.certPem, ...bundle.chainPems].map((pem, i) => {
    try {
      const der = certificateReading(pem)?.der;
      return der ? Buffer.from(der.buffer, der.byteOffset, der.byteLength) : parseCertificate(pem).raw;
    } catch (e) {
      throw new CertfleetError(
        'VALIDATION_FAILED',
        i === 0 ? 'the bundle leaf certificate is not valid PEM' : `chain certificate #${i} is not valid PEM`,
        'reissue the certificate or check the bundle the hub delivered',
        { cause: e },
      );
    }
  });
}

/** Parses the bundle's private key without ever putting key material into the error. */
export function bundleKey(bundle: Bundle): KeyObject {
  try {
    return parsePrivateKey(bundle.keyPem);
  } catch {
    throw new CertfleetError(
      'VALIDATION_FAILED',
      'the bundle private key cannot be parsed',
      'reissue the certificate or check the bundle the hub delivered',
    );
  }
}

/** The bundle's private key as unencrypted PKCS#8 PEM, whatever form the hub stored it in. */
export function bundleKeyPem(bundle: Bundle): string {
  // The EC keys certfleet writes are re-encoded from their parts; anything else goes through OpenSSL.
  return (
    ecPkcs8PemOf(bundle.keyPem) ?? (bundleKey(bundle).export({ type: 'pkcs8', format: 'pem' }) as string)
  );
}

export function requirePassword(format: string, password: string | undefined): string {
  if (!password) {
    throw new CertfleetError(
      'VALIDATION_FAILED',
      `output format "${format}" needs a password and none was given`,
      'set passwordRef on the output to "env:NAME" or "file:/path/to/password"',
    );
  }
  return password;
}
