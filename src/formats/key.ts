import type { OutputFormat } from './output-format.ts';
import { bundleKeyPem } from './pem-util.ts';

export const keyFormat: OutputFormat = {
  name: 'key',
  description: 'private key, PKCS#8 PEM ("BEGIN PRIVATE KEY")',
  async render(bundle) {
    // Re-export rather than copy so whatever the hub stored comes out as canonical unencrypted PKCS#8.
    return Buffer.from(bundleKeyPem(bundle));
  },
};
