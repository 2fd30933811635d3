import { randomBytes } from 'node:crypto';
import { CertfleetError } from '../core/errors.ts';
import { scrub } from '../notify/redact.ts';
import type { HttpConnectorSettings, HttpStep } from './http-settings.ts';
import { fill, fillJson, headerSafe, type Values } from './http-template.ts';
import { sendHttps, type HttpAnswer } from './http-send.ts';

/** One step filled in: what goes on the wire. */
export interface FilledRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Buffer;
}

/** Fills a step's templates with `values`, each escaped for where it stands. */
export function fillStep(
  step: HttpStep,
  settings: Pick<HttpConnectorSettings, 'baseUrl'>,
  values: Values,
): FilledRequest {
  const path = fill(step.url, values, encodeURIComponent);
  const url = new URL(step.url.startsWith('/') ? `${settings.baseUrl!.replace(/\/+$/, '')}${path}` : path);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(step.headers)) headers[k.toLowerCase()] = fill(v, values, headerSafe);
  let body: Buffer | undefined;
  if (step.body !== undefined) body = Buffer.from(fill(step.body, values));
  else if (step.json !== undefined) {
    body = Buffer.from(JSON.stringify(fillJson(step.json, values)));
    headers['content-type'] ??= 'application/json';
  } else if (step.multipart) {
    const boundary = `certfleet-${randomBytes(12).toString('hex')}`;
    const parts: Buffer[] = [];
    for (const [field, part] of Object.entries(step.multipart)) {
      const file = typeof part === 'string' ? undefined : part;
      const disposition = file
        ? `form-data; name="${quoted(field)}"; filename="${quoted(fill(file.filename, values))}"`
        : `form-data; name="${quoted(field)}"`;
      parts.push(
        Buffer.from(
          `--${boundary}\r\ncontent-disposition: ${disposition}\r\n` +
            (file ? `content-type: ${file.contentType ?? 'application/octet-stream'}\r\n` : '') +
            '\r\n',
        ),
        Buffer.from(fill(file ? file.content : (part as string), values)),
        Buffer.from('\r\n'),
      );
    }
    parts.push(Buffer.from(`--${boundary}--\r\n`));
    body = Buffer.concat(parts);
    headers['content-type'] = `multipart/form-data; boundary=${boundary}`;
  }
  return { method: step.method, url, headers, ...(body ? { body } : {}) };
}

function quoted(s: string): string {
  return s.replace(/["\r\n\\]/g, '_');
}

/** Does the answer meet the step's criteria? undefined when it does, else why not. */
export function judgeAnswer(step: HttpStep, a: HttpAnswer): string | undefined {
  if (!step.expect.status.some((s) => statusMatches(s, a.status)))
    return `answered HTTP ${a.status}, expected ${step.expect.status.join(', ')}`;
  if (step.expect.bodyContains !== undefined && !a.body.includes(step.expect.bodyContains))
    return `answered HTTP ${a.status} without "${step.expect.bodyContains}" in its body`;
  const j = step.expect.json;
  if (j) {
    let doc: unknown;
    try {
      doc = JSON.parse(a.body);
    } catch {
      return `answered HTTP ${a.status} with a body that is not JSON (expected ${j.path} = ${JSON.stringify(j.equals)})`;
    }
    const got = jsonPath(doc, j.path);
    if (got !== j.equals)
      return `answered HTTP ${a.status} with ${j.path} = ${got === undefined ? 'nothing' : JSON.stringify(got)}, expected ${JSON.stringify(j.equals)}`;
  }
  return undefined;
}

function statusMatches(spec: number | string, status: number): boolean {
  if (typeof spec === 'number') return spec === status;
  if (spec.endsWith('xx')) return Math.floor(status / 100) === Number(spec[0]);
  const [lo, hi] = spec.split('-').map(Number);
  return status >= lo && status <= hi;
}

/** `result.items[0].name` (a leading `$.` is allowed) in a parsed JSON document. */
export function jsonPath(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const m of path.replace(/^\$?\.?/, '').matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = m[2] !== undefined ? (cur as unknown[])[Number(m[2])] : (cur as Record<string, unknown>)[m[1]];
  }
  return cur;
}

/** Every form a secret can take in an answer that echoes the request (as is, JSON-escaped, URL-encoded). */
export function secretForms(values: string[]): string[] {
  return values.flatMap((v) => [v, JSON.stringify(v).slice(1, -1), encodeURIComponent(v)]);
}

/**
 * Sends one step and judges the answer; rejects with a CertfleetError naming the request (its name, method and
 * URL template: the filled URL may hold a secret) and a redacted excerpt of the answer.
 */
export async function runStep(
  step: HttpStep,
  settings: Pick<HttpConnectorSettings, 'baseUrl' | 'caPem' | 'timeoutSeconds'>,
  values: Values,
  o: { endpointName: string; redact: string[]; signal?: AbortSignal },
): Promise<HttpAnswer> {
  const req = fillStep(step, settings, values);
  const label = `${step.name}" (${step.method} ${step.url}) of endpoint "${o.endpointName}`;
  const answer = await sendHttps({
    ...req,
    label,
    timeoutMs: (step.timeoutSeconds ?? settings.timeoutSeconds) * 1000,
    ...(settings.caPem ? { caPem: settings.caPem } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const problem = judgeAnswer(step, answer);
  if (!problem) return answer;
  const excerpt = scrub(answer.body.replace(/\s+/g, ' ').trim(), o.redact).slice(0, 300);
  const auth = answer.status === 401 || answer.status === 403;
  throw new CertfleetError(
    'REMOTE_API_REFUSED',
    scrub(`request "${label}" ${problem}${excerpt ? `: ${excerpt}` : ''}`, o.redact),
    auth
      ? "the API refused the credentials: check the user's rights on the appliance, and set the connector's secrets again (PUT /api/v1/endpoints/NAME/connector or certfleet apply)"
      : "check the request against the API's documentation (docs/connectors.md has examples) and its success criteria (expect)",
    { details: { request: step.name, status: answer.status } },
  );
}
