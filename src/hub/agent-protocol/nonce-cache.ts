/**
 * Nonces seen within the signature window, so a captured request cannot be replayed. In memory, per hub process:
 * with several hubs a replay to another hub within the skew window is possible; requests are idempotent reads or
 * monotonic reports, which bounds the damage (documented in docs/agent.md).
 */
export class NonceCache {
  private readonly seen = new Map<string, number>();

  constructor(private readonly windowMs: number) {}

  /** Records the nonce; false when it was already used within the window. */
  remember(key: string, now: number): boolean {
    if (this.seen.size > 10_000) this.prune(now);
    const until = this.seen.get(key);
    if (until !== undefined && until > now) return false;
    this.seen.set(key, now + 2 * this.windowMs);
    return true;
  }

  private prune(now: number): void {
    for (const [k, until] of this.seen) if (until <= now) this.seen.delete(k);
  }
}
