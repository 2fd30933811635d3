import type { OutputFormat } from './output-format.ts';
import { chainDer } from './pem-util.ts';

export const derFormat: OutputFormat = {
  name: 'der',
  description: 'leaf certificate, binary DER',
  async render(bundle) {
    return chainDer({ ...bundle, chainPems: [] })[0];
  },
};
