import pino, { type Logger } from 'pino';
import { prettyDestination } from './pretty-log.ts';

/** `json`: one JSON object a line (journald, log shippers); `pretty`: one readable line per entry (a terminal). */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Paths never written to logs, whatever a caller passes in. Tested in test/core/log.test.ts. */
export const REDACT_PATHS = [
  'token',
  'password',
  'secret',
  'keyPem',
  'key_pem',
  'privateKey',
  'private_key',
  'authorization',
  'req.headers.authorization',
  'headers.authorization',
  '*.token',
  '*.password',
  '*.secret',
  '*.keyPem',
  '*.privateKey',
  '*.hmacKey',
];

/** A logger writing to `destination` (default stdout), JSON unless `format` is `pretty`. */
export function createLogger(
  opts: { level?: string; format?: LogFormat; destination?: pino.DestinationStream } = {},
): Logger {
  const destination =
    opts.format === 'pretty' ? prettyDestination(opts.destination ?? process.stdout) : opts.destination;
  return pino(
    {
      level: opts.level ?? process.env.CERTFLEET_LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}

export type { Logger };
