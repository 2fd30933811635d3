import type { OutputFormat } from './output-format.ts';
import { bundleKeyPem, chainDer, joinPem } from './pem-util.ts';

export const combinedFormat: OutputFormat = {
  name: 'combined',
  description: 'private key, leaf and intermediates in one PEM file (HAProxy crt, Postfix smtpd_chain_files)',
  async render(bundle) {
    chainDer(bundle);
    const keyPem = bundleKeyPem(bundle);
    return Buffer.from(joinPem([keyPem, bundle.certPem, ...bundle.chainPems]));
  },
};
