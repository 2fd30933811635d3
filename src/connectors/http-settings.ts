import { z } from 'zod';
import { jsonStrings, placeholderProblem, placeholdersIn, secretName } from './http-template.ts';

/**
 * The settings of an http connector endpoint: requests in four groups, each a list of templated steps
 * (http-template.ts) with success criteria. `upload` runs as the pipeline's write, `check` as its config test,
 * `activate` as its reload, `rollback` (default: the upload requests) re-uploads the previous bundle.
 */

/** `200`, `"2xx"` or `"200-204"`. */
const statusSchema = z.union([
  z.number().int().min(100).max(599),
  z.string().regex(/^[1-5]xx$|^[1-5]\d\d-[1-5]\d\d$/, 'must be a status, "2xx" or a range "200-204"'),
]);

const expectSchema = z
  .strictObject({
    status: z.array(statusSchema).min(1).default(['2xx']),
    /** The answer's body must contain this text. */
    bodyContains: z.string().min(1).optional(),
    /** The answer must be JSON whose value at `path` (`result.code`, `items[0].name`) equals `equals`. */
    json: z
      .strictObject({
        path: z
          .string()
          .regex(
            /^\$?\.?[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+|\[\d+\])*$/,
            'must be a path like result.items[0].name',
          ),
        equals: z.union([z.string(), z.number(), z.boolean(), z.null()]),
      })
      .optional(),
  })
  .prefault({});

const multipartPart = z.union([
  z.string(),
  z.strictObject({ filename: z.string().min(1), content: z.string(), contentType: z.string().optional() }),
]);

export const httpStepSchema = z
  .strictObject({
    /** Names the request in events and errors. */
    name: z.string().min(1).max(80),
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
    /** Absolute (https://...) or relative to the connector's baseUrl; placeholders are URL-encoded. */
    url: z.string().min(1).max(4096),
    headers: z
      .record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a header name'), z.string())
      .default({}),
    /** A text body (placeholders as they are). */
    body: z.string().optional(),
    /** A JSON body: every string in it is templated and JSON-escaped. */
    json: z.unknown().optional(),
    /** A multipart/form-data body: fields, or files `{filename, content}`. */
    multipart: z.record(z.string().min(1), multipartPart).optional(),
    expect: expectSchema,
    /** Overrides the connector's timeoutSeconds for this request. */
    timeoutSeconds: z.number().int().min(1).max(600).optional(),
  })
  .refine((s) => [s.body, s.json, s.multipart].filter((b) => b !== undefined).length <= 1, {
    message: 'give at most one of body, json, multipart',
  });
export type HttpStep = z.output<typeof httpStepSchema>;

const steps = z.array(httpStepSchema).max(20);

export const HTTP_GROUPS = ['upload', 'check', 'activate', 'rollback'] as const;
export type HttpGroup = (typeof HTTP_GROUPS)[number];

export const httpConnectorSchema = z
  .strictObject({
    kind: z.literal('http'),
    /** Prefix of relative request URLs, e.g. https://lb1.example.net:8443. */
    baseUrl: z.url({ protocol: /^https$/, error: 'must be an https:// URL' }).optional(),
    /** PEM bundle of the CAs the API's certificate must chain to; absent: the system's trust store. */
    caPem: z
      .string()
      .max(256 * 1024)
      .regex(/-----BEGIN CERTIFICATE-----/, 'must be PEM certificates')
      .optional(),
    /** Per request (connect, send, answer). */
    timeoutSeconds: z.number().int().min(1).max(600).default(30),
    upload: steps.min(1),
    check: steps.default([]),
    activate: steps.default([]),
    /** Re-uploads the previous bundle on a rollback; absent: the upload requests are sent with it. */
    rollback: steps.optional(),
  })
  .superRefine((s, ctx) => {
    for (const group of HTTP_GROUPS) {
      for (const [i, step] of (s[group] ?? []).entries()) {
        const at = (...p: PropertyKey[]) => [group, i, ...p];
        const url = step.url;
        if (!/^https:\/\//i.test(url) && !(url.startsWith('/') && s.baseUrl)) {
          ctx.addIssue({
            code: 'custom',
            path: at('url'),
            message: s.baseUrl
              ? 'must be https://... or a path starting with /'
              : 'must be an https:// URL (or set baseUrl and give a path)',
          });
        }
        for (const [where, text] of templatesOf(step)) {
          for (const p of placeholdersIn(text)) {
            const problem = placeholderProblem(p);
            if (problem) ctx.addIssue({ code: 'custom', path: at(...where), message: problem });
          }
        }
      }
    }
  });
export type HttpConnectorSettings = z.output<typeof httpConnectorSchema>;

/** Every templated string of a step with where it is. */
export function templatesOf(step: HttpStep): Array<[PropertyKey[], string]> {
  const out: Array<[PropertyKey[], string]> = [[['url'], step.url]];
  for (const [k, v] of Object.entries(step.headers)) out.push([['headers', k], v]);
  if (step.body !== undefined) out.push([['body'], step.body]);
  if (step.json !== undefined) for (const s of jsonStrings(step.json)) out.push([['json'], s]);
  for (const [k, v] of Object.entries(step.multipart ?? {})) {
    if (typeof v === 'string') out.push([['multipart', k], v]);
    else out.push([['multipart', k, 'filename'], v.filename], [['multipart', k, 'content'], v.content]);
  }
  return out;
}

/** The secrets the requests reference (`{{secret:NAME}}`), sorted. */
export function referencedSecrets(s: Pick<HttpConnectorSettings, HttpGroup>): string[] {
  const names = new Set<string>();
  for (const group of HTTP_GROUPS)
    for (const step of s[group] ?? [])
      for (const [, text] of templatesOf(step))
        for (const p of placeholdersIn(text)) {
          const n = secretName(p);
          if (n) names.add(n);
        }
  return [...names].sort();
}
