import type { OutputFormat } from './output-format.ts';
import { chainDer, joinPem } from './pem-util.ts';

export const chainFormat: OutputFormat = {
  name: 'chain',
  description: 'intermediate certificates, PEM, issuer of the leaf first',
  async render(bundle) {
    chainDer(bundle);
    return Buffer.from(joinPem(bundle.chainPems));
  },
};
