import { CertfleetError } from '../core/errors.ts';
import type { OutputFormat } from './output-format.ts';
import { bundleKey } from './pem-util.ts';

export const keyRsaFormat: OutputFormat = {
  name: 'key-rsa',
  description: 'RSA private key, PKCS#1 PEM ("BEGIN RSA PRIVATE KEY") for software that predates PKCS#8',
  async render(bundle) {
    const key = bundleKey(bundle);
    if (key.asymmetricKeyType !== 'rsa') {
      throw new CertfleetError(
        'VALIDATION_FAILED',
        `output format "key-rsa" needs an RSA key, but this certificate has an ${key.asymmetricKeyType} key`,
        'use format "key" (PKCS#8) for this output, or give the certificate an rsa-* key type',
      );
    }
    return Buffer.from(key.export({ type: 'pkcs1', format: 'pem' }) as string);
  },
};
