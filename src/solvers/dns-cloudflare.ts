import { CertfleetError } from '../core/errors.ts';
import { challengeRecordName } from './dns-propagation.ts';
import type { ChallengeInput, Solver } from './solver.ts';

export interface CloudflareOptions {
  /** API token with Zone:Read and DNS:Edit. A secret: never logged or put in errors. */
  apiToken: string;
  baseUrl?: string;
  /** Zone name to use; found by walking up the identifier's labels when absent. */
  zone?: string;
  ttl?: number;
  fetchImpl?: typeof fetch;
}

interface CfEnvelope<T> {
  success: boolean;
  errors?: Array<{ code?: number; message?: string }>;
  result: T;
}

/** dns-01 through the Cloudflare v4 REST API: look up the zone, create and delete the TXT record. */
export class CloudflareDnsSolver implements Solver {
  readonly type = 'dns-01' as const;
  private readonly baseUrl: string;
  /** token+name → record id, so cleanup deletes exactly what present created. */
  private readonly created = new Map<string, { zoneId: string; recordId: string }>();

  constructor(private readonly opts: CloudflareOptions) {
    this.baseUrl = (opts.baseUrl ?? 'https://api.cloudflare.com/client/v4').replace(/\/+$/, '');
  }

  private async api<T>(method: string, path: string, body?: object, signal?: AbortSignal): Promise<T> {
    const f = this.opts.fetchImpl ?? fetch;
    let res: Response;
    try {
      res = await f(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.opts.apiToken}`, 'content-type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
        signal,
      });
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw new CertfleetError(
        'UNREACHABLE',
        `cannot reach the Cloudflare API at ${this.baseUrl}`,
        'check network and baseUrl',
        {
          cause: e,
        },
      );
    }
    let json: CfEnvelope<T> | undefined;
    try {
      json = (await res.json()) as CfEnvelope<T>;
    } catch {
      json = undefined;
    }
    if (!res.ok || !json?.success) {
      const msg =
        json?.errors?.map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ') || 'no error detail';
      throw new CertfleetError(
        'ISSUANCE_FAILED',
        `Cloudflare API ${method} ${path.split('?')[0]} failed with HTTP ${res.status}: ${msg}`,
        res.status === 401 || res.status === 403
          ? 'the API token is invalid or lacks Zone:Read and DNS:Edit for this zone'
          : 'check the zone and the token permissions',
        { details: { status: res.status } },
      );
    }
    return json.result;
  }

  private async zoneId(identifier: string, signal?: AbortSignal): Promise<string> {
    const labels = identifier.replace(/^\*\./, '').split('.');
    const candidates = this.opts.zone
      ? [this.opts.zone]
      : labels.slice(0, -1).map((_, i) => labels.slice(i).join('.'));
    for (const name of candidates) {
      const zones = await this.api<Array<{ id: string; name: string }>>(
        'GET',
        `/zones?name=${encodeURIComponent(name)}`,
        undefined,
        signal,
      );
      if (zones.length) return zones[0].id;
    }
    throw new CertfleetError(
      'ISSUANCE_FAILED',
      `no Cloudflare zone found for ${identifier} (tried ${candidates.join(', ')})`,
      'set zone explicitly, or give the token access to the zone',
    );
  }

  async present(ch: ChallengeInput, signal?: AbortSignal): Promise<void> {
    const zoneId = await this.zoneId(ch.identifier, signal);
    const record = await this.api<{ id: string }>(
      'POST',
      `/zones/${zoneId}/dns_records`,
      {
        type: 'TXT',
        name: challengeRecordName(ch.identifier),
        content: ch.dnsValue,
        ttl: this.opts.ttl ?? 60,
      },
      signal,
    );
    this.created.set(`${ch.token} ${ch.identifier}`, { zoneId, recordId: record.id });
  }

  async cleanup(ch: ChallengeInput, signal?: AbortSignal): Promise<void> {
    const key = `${ch.token} ${ch.identifier}`;
    let hit = this.created.get(key);
    if (!hit) {
      // present() failed half way or the hub restarted: find the record by name and value.
      const zoneId = await this.zoneId(ch.identifier, signal);
      const name = encodeURIComponent(challengeRecordName(ch.identifier));
      const content = encodeURIComponent(ch.dnsValue ?? '');
      const found = await this.api<Array<{ id: string }>>(
        'GET',
        `/zones/${zoneId}/dns_records?type=TXT&name=${name}&content=${content}`,
        undefined,
        signal,
      );
      if (!found.length) return;
      hit = { zoneId, recordId: found[0].id };
    }
    await this.api('DELETE', `/zones/${hit.zoneId}/dns_records/${hit.recordId}`, undefined, signal);
    this.created.delete(key);
  }
}
