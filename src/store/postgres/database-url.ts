import { CertfleetError } from '../../core/errors.ts';

const HINT =
  'pass --database-url (or set CERTFLEET_DATABASE_URL) as postgres://USER:PASSWORD@HOST:PORT/DATABASE';

/** Whether a `--database-url` / `--to` value names a PostgreSQL database. */
export const isPostgresUrl = (url: string): boolean => /^postgres(ql)?:\/\//i.test(url);

/** Checks a PostgreSQL URL's shape; the error never repeats the URL (it may carry a password). */
export function parseDatabaseUrl(url: string): URL {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || !isPostgresUrl(url) || !parsed.hostname || parsed.pathname.length <= 1) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      'the database URL is not a postgres:// URL with a database',
      HINT,
    );
  }
  return parsed;
}

/** `user@host:port/database`: the URL without its password, for messages and logs. */
export function describeDatabaseUrl(url: string): string {
  const u = parseDatabaseUrl(url);
  const user = u.username ? `${decodeURIComponent(u.username)}@` : '';
  return `${user}${u.hostname}:${u.port || '5432'}${u.pathname}`;
}

/** Why a connection failed, in words, with what to check; the driver's own message names the cause. */
export function unreachableDatabase(url: string, cause: unknown): CertfleetError {
  const err = cause as { code?: string; message?: string };
  const reason =
    err?.code === '3D000'
      ? 'the database does not exist'
      : err?.code === '28P01' || err?.code === '28000'
        ? 'the server refused the user or password'
        : err?.code === 'ECONNREFUSED'
          ? 'connection refused (is the server running, on this port?)'
          : (err?.message ?? String(cause));
  return new CertfleetError(
    'UNREACHABLE',
    `cannot use PostgreSQL database ${describeDatabaseUrl(url)}: ${reason}`,
    `${HINT}; check that the server is reachable from this host and the database exists`,
    { cause },
  );
}

/**
 * Whether a query failed because the database went away (restart, failover, network) rather than because of the
 * query: a retry later, here or at another hub, may succeed. SQLSTATE classes 08 (connection) and 57P (shutdown,
 * starting up), socket errors, and pg's own "Connection terminated" and pool connect timeout.
 */
export function isDatabaseUnavailable(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | undefined;
  const code = typeof err?.code === 'string' ? err.code : '';
  return (
    /^(08|57P0)/.test(code) ||
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code) ||
    /^(Connection terminated|timeout exceeded when trying to connect)/.test(
      typeof err?.message === 'string' ? err.message : '',
    )
  );
}

/** The API's answer to a request that lost the database (see isDatabaseUnavailable); the cause stays in the log. */
export function storeUnavailable(cause: unknown): CertfleetError {
  return new CertfleetError(
    'STORE_UNAVAILABLE',
    'the hub cannot reach its database right now',
    'retry in a few seconds; if it lasts, check the PostgreSQL server and the network to it',
    { cause },
  );
}
