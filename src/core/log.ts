import pino, { type Logger } from 'pino';

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

export function createLogger(opts: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.CERTFLEET_LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    opts.destination,
  );
}

export type { Logger };
