import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Page, PageRequest } from '../../store/store.ts';

/** Items per page when the client names no `limit`: fleets up to this size see one page, as before pagination. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** `?limit=&cursor=` of every paginated list route. */
export const pageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
  cursor: z.string().min(1).max(2048).optional(),
});

export const pageOf = (q: z.output<typeof pageQuerySchema>): PageRequest => ({
  limit: q.limit,
  ...(q.cursor ? { cursor: q.cursor } : {}),
});

/**
 * Answers a page as a plain JSON array (the shape these routes had before they paginated) and names the next
 * page in headers: `x-next-cursor` (pass it as `cursor=`) and an RFC 8288 `Link: <…>; rel="next"`. No header on
 * the last page.
 */
export function sendPage<T, V>(
  req: FastifyRequest,
  reply: FastifyReply,
  page: Page<T>,
  view: (item: T) => V,
): V[] {
  if (page.next) {
    const next = new URL(req.url, 'http://hub.invalid');
    next.searchParams.set('cursor', page.next);
    reply.header('x-next-cursor', page.next);
    reply.header('link', `<${next.pathname}${next.search}>; rel="next"`);
  }
  return page.items.map(view);
}
