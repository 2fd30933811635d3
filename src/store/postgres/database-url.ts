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
