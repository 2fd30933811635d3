export type { OutputFormat, RenderOptions } from './output-format.ts';
export { DEFAULT_ALIAS } from './output-format.ts';
export { formatRegistry, getFormat, listFormats, renderOutput } from './registry.ts';
export { resolvePasswordRef } from './password-ref.ts';
