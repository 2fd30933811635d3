import { isDeepStrictEqual } from 'node:util';
import { serializerCompiler } from 'fastify-type-provider-zod';
import { CertfleetError, errorMessage } from '../../core/errors.ts';

/**
 * The zod serializer, plus a check that the answer lost nothing: a field the handler returned that the response
 * schema does not list would be dropped silently in production, so under test it fails the request and names the
 * field; an answer the schema refuses names the mismatch instead of a bare 500. Values the schema adds (defaults)
 * are allowed.
 */
export const checkingSerializerCompiler: typeof serializerCompiler = (route) => {
  const serialize = serializerCompiler(route);
  return (data) => {
    let out: string;
    try {
      out = serialize(data);
    } catch (e) {
      // In production this is a bare 500; under test, name what did not match.
      const cause = (e as { cause?: { issues?: Array<{ path: PropertyKey[]; message: string }> } }).cause;
      const issues = (cause?.issues ?? []).map((i) => `$.${i.path.map(String).join('.')}: ${i.message}`);
      throw new CertfleetError(
        'INTERNAL',
        `the answer of ${route.method} ${route.url} does not match its response schema: ${issues.slice(0, 5).join('; ') || errorMessage(e)}`,
        'fix the handler or src/hub/api/response-schemas.ts',
      );
    }
    const lost = lostPaths(JSON.parse(JSON.stringify(data) ?? 'null'), JSON.parse(out));
    if (lost.length > 0) {
      throw new CertfleetError(
        'INTERNAL',
        `the response schema of ${route.method} ${route.url} drops ${lost.slice(0, 5).join(', ')}`,
        'list the fields in src/hub/api/response-schemas.ts',
      );
    }
    return out;
  };
};

/** JSON paths present in `sent` that `kept` lacks or changed. */
export function lostPaths(sent: unknown, kept: unknown, path = '$'): string[] {
  if (Array.isArray(sent) && Array.isArray(kept)) {
    return sent.flatMap((v, i) => lostPaths(v, kept[i], `${path}[${i}]`));
  }
  if (isObject(sent) && isObject(kept)) {
    return Object.keys(sent).flatMap((k) =>
      k in kept ? lostPaths(sent[k], kept[k], `${path}.${k}`) : [`${path}.${k}`],
    );
  }
  return isDeepStrictEqual(sent, kept) ? [] : [path];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
