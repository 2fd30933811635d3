import type { OutputFormat } from './output-format.ts';
import { chainDer, joinPem } from './pem-util.ts';

export const fullchainFormat: OutputFormat = {
  name: 'fullchain',
  description: 'leaf then intermediates, PEM (nginx ssl_certificate, Apache 2.4.8+)',
  async render(bundle) {
    chainDer(bundle);
    return Buffer.from(joinPem([bundle.certPem, ...bundle.chainPems]));
  },
};
