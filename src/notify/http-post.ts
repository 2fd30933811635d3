import { CertfleetError } from '../core/errors.ts';
import { redactUrl, scrub, urlSecrets } from './redact.ts';

export interface PostOptions {
  /** Channel kind and name, for error messages. */
  kind: string;
  name: string;
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** Strings that must never appear in an error (HMAC secret, header values). */
  secrets?: Array<string | undefined>;
  signal?: AbortSignal;
}

/** HTTP statuses worth retrying; any other 4xx is a configuration problem retrying will not fix. */
function retryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * POSTs a body and fails with a CertfleetError naming the channel, the HTTP status and a short snippet of the
 * receiver's answer, never the URL path, query or any secret. `details.retryable` tells the retry loop
 * whether another attempt can help.
 */
export async function postToChannel(o: PostOptions): Promise<void> {
  const where = redactUrl(o.url);
  const secrets = [...urlSecrets(o.url), ...(o.secrets ?? [])];
  const channel = `${o.kind} channel "${o.name}"`;
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(o.url, { method: 'POST', body: o.body, headers: o.headers, signal, redirect: 'error' });
  } catch (e) {
    if (o.signal?.aborted) throw o.signal.reason;
    if (timeout.aborted) {
      throw new CertfleetError(
        'NOTIFY_FAILED',
        `${channel} did not answer within ${o.timeoutMs} ms (${where})`,
        'Check that the receiver is up and reachable from the hub, or raise timeoutMs; delivery is retried.',
        { details: { channel: o.name, channelKind: o.kind, retryable: true } },
      );
    }
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const reason = scrub(cause?.code ?? cause?.message ?? (e as Error).message, secrets);
    throw new CertfleetError(
      'NOTIFY_FAILED',
      `${channel} could not reach ${where}: ${reason}`,
      'Check that the receiver is up and reachable from the hub (DNS, firewall, proxy, TLS trust); delivery is retried.',
      { details: { channel: o.name, channelKind: o.kind, retryable: true, reason } },
    );
  }
  if (res.ok) {
    await res.body?.cancel().catch(() => {});
    return;
  }
  const text = await res.text().catch(() => '');
  const snippet = scrub(text.replace(/\s+/g, ' ').trim().slice(0, 200), secrets);
  const retryable = retryableStatus(res.status);
  throw new CertfleetError(
    'NOTIFY_FAILED',
    `${channel} got HTTP ${res.status} from ${where}${snippet ? `: ${snippet}` : ''}`,
    retryable
      ? 'The receiver failed; delivery is retried. Check the receiving service if this persists.'
      : 'The receiver refused the request: check the channel URL, token and headers in the configuration.',
    { details: { channel: o.name, channelKind: o.kind, status: res.status, retryable } },
  );
}
