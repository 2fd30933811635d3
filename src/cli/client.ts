import { readFileSync, existsSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CertfleetError, type ErrorCode } from '../core/errors.ts';

export interface ClientOptions {
  hub: string;
  token?: string;
  caPem?: string;
}

export const DEFAULT_HUB = 'https://127.0.0.1:8443';
export const DEFAULT_DATA_DIR = './.certfleet';
/** Items per request when the CLI walks a list (the hub's largest page). */
const PAGE_SIZE = 1000;

interface CliConfigFile {
  hub?: string;
  token?: string;
  caFile?: string;
}

function readConfigFile(path: string | undefined, explicit: boolean): CliConfigFile {
  const p = path ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'certfleet', 'cli.yaml');
  if (!existsSync(p)) {
    if (explicit)
      throw new CertfleetError('CONFIG_INVALID', `config file ${p} not found`, 'check the --config path');
    return {};
  }
  try {
    // Required here, only when there is a file: loading the YAML parser costs half a bare Node start-up, and
    // every client command (and `certfleet --help`) would pay it.
    const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
    return (parse(readFileSync(p, 'utf8')) ?? {}) as CliConfigFile;
  } catch (e) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `config file ${p} is not valid YAML: ${(e as Error).message}`,
      'fix the file',
    );
  }
}

/**
 * Where the CLI finds the hub: flags, then environment (CERTFLEET_HUB, CERTFLEET_TOKEN, CERTFLEET_CA_FILE), then
 * the config file, then defaults. The hub's CA defaults to `<data dir>/ca.pem` when the hub runs on this machine.
 */
export function resolveClientOptions(flags: {
  hub?: string;
  token?: string;
  caFile?: string;
  config?: string;
}): ClientOptions {
  const file = readConfigFile(
    flags.config ?? process.env.CERTFLEET_CONFIG,
    Boolean(flags.config ?? process.env.CERTFLEET_CONFIG),
  );
  const hub = flags.hub ?? process.env.CERTFLEET_HUB ?? file.hub ?? DEFAULT_HUB;
  const token = flags.token ?? process.env.CERTFLEET_TOKEN ?? file.token;
  const localCa = join(process.env.CERTFLEET_DATA_DIR ?? DEFAULT_DATA_DIR, 'ca.pem');
  const caFile =
    flags.caFile ??
    process.env.CERTFLEET_CA_FILE ??
    file.caFile ??
    (existsSync(localCa) ? localCa : undefined);
  let caPem: string | undefined;
  if (caFile) {
    try {
      caPem = readFileSync(caFile, 'utf8');
    } catch {
      throw new CertfleetError(
        'CONFIG_INVALID',
        `cannot read CA file ${caFile}`,
        'pass --ca-file with the hub CA (the hub writes <data-dir>/ca.pem)',
      );
    }
  }
  return { hub: hub.replace(/\/+$/, ''), ...(token ? { token } : {}), ...(caPem ? { caPem } : {}) };
}

export class HubClient {
  constructor(private readonly opts: ClientOptions) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', path, body);
  }
  put<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('PUT', path, body);
  }
  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  /**
   * Every item of a paginated list route: asks for the largest page and follows `x-next-cursor` until the last
   * page. A hub that does not paginate answers the whole list at once (no header), which ends the walk too.
   */
  async getAll<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    const seen = new Set<string>();
    const sep = path.includes('?') ? '&' : '?';
    for (let cursor: string | undefined; ;) {
      const page = await this.send<T[]>(
        'GET',
        `${path}${sep}limit=${PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      items.push(...page.data);
      const next = page.headers['x-next-cursor'];
      if (typeof next !== 'string' || next === '') return items;
      if (seen.has(next)) {
        throw new CertfleetError(
          'INTERNAL',
          `the hub answered the same page cursor twice for ${path}`,
          'upgrade the hub, or report this with `certfleet --debug`',
        );
      }
      seen.add(next);
      cursor = next;
    }
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.send<T>(method, path, body)).data;
  }

  private async send<T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ data: T; headers: IncomingHttpHeaders }> {
    const url = new URL(`${this.opts.hub}${path}`);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    // gzip: list pages of a large fleet are tens of kB each, and the hub compresses a cached page only once
    const headers: Record<string, string> = { accept: 'application/json', 'accept-encoding': 'gzip' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    // Loaded on the first request, not with the module: `certfleet --help` needs no HTTP or TLS stack.
    const { request: send } =
      url.protocol === 'https:' ? await import('node:https') : await import('node:http');
    const { gunzipSync } = await import('node:zlib');
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        { method, headers, timeout: 120_000, ...(this.opts.caPem ? { ca: this.opts.caPem } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let raw = Buffer.concat(chunks);
            if (res.headers['content-encoding'] === 'gzip') {
              try {
                raw = gunzipSync(raw);
              } catch {
                reject(
                  new CertfleetError(
                    'UNREACHABLE',
                    `the hub at ${this.opts.hub} sent a gzip answer that does not decompress`,
                    'check that nothing between the CLI and the hub rewrites answers (a proxy), then retry',
                  ),
                );
                return;
              }
            }
            const text = raw.toString();
            const data = text ? safeJson(text) : undefined;
            if ((res.statusCode ?? 500) >= 400) {
              const e = (data ?? {}) as {
                code?: ErrorCode;
                message?: string;
                hint?: string;
                details?: Record<string, unknown>;
              };
              reject(
                new CertfleetError(
                  e.code ?? 'INTERNAL',
                  e.message ?? `hub answered HTTP ${res.statusCode}`,
                  e.hint ?? '',
                  {
                    ...(e.details ? { details: e.details } : {}),
                  },
                ),
              );
            } else resolve({ data: data as T, headers: res.headers });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out after 120 s')));
      req.on('error', (err: NodeJS.ErrnoException) => reject(connectionError(this.opts.hub, err)));
      if (payload) req.write(payload);
      req.end();
    });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 200) };
  }
}

function connectionError(hub: string, err: NodeJS.ErrnoException): CertfleetError {
  if (err.code === 'ECONNREFUSED') {
    return new CertfleetError(
      'UNREACHABLE',
      `cannot connect to the hub at ${hub}`,
      'start it with `certfleet hub`, or pass --hub / CERTFLEET_HUB',
    );
  }
  if (
    err.code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    err.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    err.code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'
  ) {
    return new CertfleetError(
      'UNREACHABLE',
      `the hub's TLS certificate at ${hub} is not trusted`,
      'pass --ca-file with the hub CA (<data-dir>/ca.pem) or set CERTFLEET_CA_FILE',
    );
  }
  return new CertfleetError(
    'UNREACHABLE',
    `request to the hub at ${hub} failed: ${err.message}`,
    'check --hub and that the hub is running',
  );
}
