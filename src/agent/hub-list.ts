/**
 * The hubs an agent may talk to, in order of preference (`--hub URL1,URL2`, `hubs` in agent.json). All of them
 * serve one database, so the agent's identity, its nonces and the desired state are the same at each. The first
 * is used while it answers; a connection failure, timeout or 5xx moves to the next (the caller retries with its
 * backoff); while on a later hub, the first is checked again every `returnAfterMs` and taken back once it answers.
 */
import { CertfleetError } from '../core/errors.ts';

/** `https://a:8443,https://b:8443` (also repeated flags joined by commas) → a list without trailing slashes. */
export function parseHubList(value: string | string[]): string[] {
  const list = (Array.isArray(value) ? value : [value])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  const bad = list.find((h) => !/^https?:\/\/[^\s/]+/.test(h));
  if (list.length === 0 || bad !== undefined) {
    throw new CertfleetError(
      'VALIDATION_FAILED',
      list.length === 0 ? '--hub names no hub URL' : `--hub "${bad}" is not a hub URL`,
      'give the hub URL the hub prints, or several separated by commas (https://hub1:8443,https://hub2:8443)',
    );
  }
  return [...new Set(list)];
}

export type HubChange = { from: string; to: string; reason: string };

export class HubList {
  private index = 0;
  private onFallbackSince = 0;

  constructor(
    readonly hubs: readonly string[],
    private readonly returnAfterMs = 60_000,
    private readonly onChange?: (change: HubChange) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get current(): string {
    return this.hubs[this.index];
  }

  /** `hub` failed (connection, timeout, 5xx): the next one in the list becomes current, unless another did already. */
  failed(hub: string, reason: string): void {
    if (this.hubs.length < 2 || hub !== this.current) return;
    this.move((this.index + 1) % this.hubs.length, reason);
  }

  /** On a later hub for `returnAfterMs`: time to see whether the first hub answers again. */
  shouldTryPreferred(): boolean {
    return this.index !== 0 && this.now() - this.onFallbackSince >= this.returnAfterMs;
  }

  /** The first hub answered the check: back to it. Did not: check again after `returnAfterMs`. */
  preferredChecked(answered: boolean): void {
    if (answered) this.move(0, 'the first hub in the list answers again');
    else this.onFallbackSince = this.now();
  }

  private move(to: number, reason: string): void {
    const from = this.current;
    this.index = to;
    this.onFallbackSince = this.now();
    this.onChange?.({ from, to: this.current, reason });
  }
}
