import type { OutputFormat } from './output-format.ts';
import { bundleKey } from './pem-util.ts';

export const keyFormat: OutputFormat = {
  name: 'key',
  description: 'private key, PKCS#8 PEM ("BEGIN PRIVATE KEY")',
  async render(bundle) {
    // Re-export rather than copy so whatever the hub stored comes out as canonical unencrypted PKCS#8.
    return Buffer.from(bundleKey(bundle).export({ type: 'pkcs8', format: 'pem' }) as string);
  },
};
