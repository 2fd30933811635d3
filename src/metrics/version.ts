import { readFileSync } from 'node:fs';

/** certfleet's version, from the package.json this code ships in (`certfleet_build_info`). */
export const CERTFLEET_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();
