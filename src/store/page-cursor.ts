import { CertfleetError } from '../core/errors.ts';
import type { Page, PageRequest } from './store.ts';

/**
 * Opaque page cursors: base64url of the JSON `[list, ...sort key of the last item]`. The list name keeps a cursor
 * of one list from being replayed against another; clients must treat the text as opaque.
 */
export function encodeCursor(list: string, key: string[]): string {
  return Buffer.from(JSON.stringify([list, ...key])).toString('base64url');
}

/** The sort key in `cursor`; BAD_REQUEST when it is not a cursor of `list` with `arity` key parts. */
export function decodeCursor(list: string, cursor: string, arity: number): string[] {
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parts = undefined;
  }
  if (
    !Array.isArray(parts) ||
    parts.length !== arity + 1 ||
    parts[0] !== list ||
    !parts.every((p) => typeof p === 'string')
  ) {
    throw new CertfleetError(
      'BAD_REQUEST',
      `cursor "${cursor.slice(0, 64)}" is not a cursor of the ${list} list`,
      'pass the x-next-cursor value of the previous page unchanged, or leave cursor= out to start from the first page',
    );
  }
  return (parts as string[]).slice(1);
}

/**
 * Turns items read with `limit + 1` into a page: the extra item only tells that a next page exists, whose cursor is
 * the sort key of the page's last item.
 */
export function toPage<T>(items: T[], page: PageRequest | undefined, cursorOf: (last: T) => string): Page<T> {
  if (!page || items.length <= page.limit) return { items };
  const kept = items.slice(0, page.limit);
  return { items: kept, next: cursorOf(kept[kept.length - 1]) };
}
