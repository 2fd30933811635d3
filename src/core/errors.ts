/**
 * One catalogue of error codes. Every error a user can see carries a stable code, a message naming the
 * problem, and a hint naming the fix. The API maps `status` to the HTTP response; the CLI prints message + hint.
 */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  INVALID_DNS_NAME: 400,
  UNKNOWN_KEY_TYPE: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CERTIFICATE_NOT_FOUND: 404,
  ENDPOINT_NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  MASTER_KEY_MISMATCH: 500,
  CONFIG_INVALID: 400,
  ISSUANCE_FAILED: 502,
  ACME_ERROR: 502,
  UNREACHABLE: 502,
  NOTIFY_FAILED: 502,
  OUTPUT_WRITE_FAILED: 500,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

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
