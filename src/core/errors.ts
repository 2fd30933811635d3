/**
 * One catalogue of error codes (as fastify's lib/errors.js): every error a user can see carries a stable code, its
 * HTTP status, a message naming the problem and a hint naming the fix. Entries with a `message` template are built
 * only through `errorOf(code, ...args)` (`%s` is replaced by each argument in turn), so the same problem reads the
 * same wherever it is found; entries without one are generic and take their message where they are thrown.
 * test/core/errors.test.ts pins that every code used in src/ is listed here.
 */
export const ERROR_CATALOGUE = {
  BAD_REQUEST: { status: 400 },
  VALIDATION_FAILED: { status: 400 },
  INVALID_DNS_NAME: { status: 400 },
  UNKNOWN_KEY_TYPE: { status: 400 },
  CONFIG_INVALID: { status: 400 },
  USAGE: { status: 400 },
  UNAUTHENTICATED: { status: 401 },
  FORBIDDEN: { status: 403 },
  NOT_FOUND: { status: 404 },
  CERTIFICATE_NOT_FOUND: {
    status: 404,
    message: 'certificate "%s" not found',
    hint: 'list certificates with `certfleet cert list`',
  },
  ENDPOINT_NOT_FOUND: {
    status: 404,
    message: 'endpoint "%s" not found',
    hint: 'list endpoints with `certfleet endpoint list`, or create it with `certfleet endpoint add NAME`',
  },
  SUBSCRIPTION_NOT_FOUND: {
    status: 404,
    message: 'subscription "%s" not found',
    hint: 'list subscriptions with `certfleet subscription list`',
  },
  ALREADY_EXISTS: { status: 409 },
  CONFLICT: { status: 409 },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    message: 'request body is too large',
    hint: 'send at most %s KiB per request',
  },
  RATE_LIMITED: { status: 429 },
  MASTER_KEY_MISMATCH: { status: 500 },
  /** A backup file that cannot be opened or used: wrong key, damaged, or from a newer certfleet. */
  BACKUP_INVALID: { status: 422 },
  ISSUANCE_FAILED: { status: 502 },
  ACME_ERROR: { status: 502 },
  UNREACHABLE: { status: 502 },
  /** An SSH connector endpoint presented a host key other than the one pinned for it (or none is pinned). */
  HOST_KEY_UNTRUSTED: { status: 502 },
  NOTIFY_FAILED: { status: 502 },
  /** An http connector endpoint's API answered outside the request's success criteria (status or body). */
  REMOTE_API_REFUSED: { status: 502 },
  /** An http connector endpoint's API presented a certificate the connector does not trust. */
  REMOTE_TLS_UNTRUSTED: { status: 502 },
  /** A delivery or request cancelled before it finished (shutdown, the client went away). */
  ABORTED: { status: 503 },
  /** The hub lost its database connection (a PostgreSQL restart or failover): retry, at this hub or another. */
  STORE_UNAVAILABLE: { status: 503 },
  OUTPUT_WRITE_FAILED: { status: 500 },
  INTERNAL: { status: 500, message: 'internal error', hint: 'see the hub log' },
} as const satisfies Record<string, { status: number; message?: string; hint?: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** HTTP status per code. */
export const ERROR_STATUS: { readonly [K in ErrorCode]: number } = Object.fromEntries(
  Object.entries(ERROR_CATALOGUE).map(([code, e]) => [code, e.status]),
) as { [K in ErrorCode]: number };

type Templated = {
  [K in ErrorCode]: (typeof ERROR_CATALOGUE)[K] extends { message: string } ? K : never;
}[ErrorCode];

/** Fills `%s` placeholders in order: `fill('"%s" not found', 'web')`. */
const fill = (template: string, args: string[]): { text: string; used: number } => {
  let used = 0;
  const text = template.replace(/%s/g, () => args[used++] ?? '');
  return { text, used };
};

/**
 * The error of a catalogue entry with a message template: the message's placeholders take the first arguments, the
 * hint's the rest. `errorOf('CERTIFICATE_NOT_FOUND', 'web')`.
 */
export function errorOf(code: Templated, ...args: string[]): CertfleetError {
  const entry = ERROR_CATALOGUE[code] as { message: string; hint?: string };
  const message = fill(entry.message, args);
  const hint = fill(entry.hint ?? '', args.slice(message.used));
  return new CertfleetError(code, message.text, hint.text);
}

/** "certificate not found", built in one place. */
export const certificateNotFound = (name: string): CertfleetError => errorOf('CERTIFICATE_NOT_FOUND', name);

/** "endpoint not found", built in one place. */
export const endpointNotFound = (name: string): CertfleetError => errorOf('ENDPOINT_NOT_FOUND', name);

export class CertfleetError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  /** Extra machine-readable facts, safe to show (never secrets). */
  readonly details?: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    hint = '',
    opts: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'CertfleetError';
    this.code = code;
    this.hint = hint;
    this.details = opts.details;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toJSON(): { code: string; message: string; hint: string; details?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export function isCertfleetError(e: unknown): e is CertfleetError {
  return e instanceof CertfleetError;
}

/** A message safe to show for any thrown value. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
