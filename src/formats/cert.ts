import type { OutputFormat } from './output-format.ts';
import { chainDer, pemBlock } from './pem-util.ts';

export const certFormat: OutputFormat = {
  name: 'cert',
  description: 'leaf certificate, PEM',
  async render(bundle) {
    chainDer({ ...bundle, chainPems: [] });
    return Buffer.from(pemBlock(bundle.certPem));
  },
};
