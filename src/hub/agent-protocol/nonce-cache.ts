import type { NonceLedger } from './shared-nonces.ts';

/**
 * Nonces seen within the signature window, so a captured request cannot be replayed. Two generations, rotated every
 * window: a nonce is remembered for at least one full window (timestamps older than that are refused anyway), and
 * every operation is O(1) however many agents there are. In memory, per hub process: for the one hub on SQLite;
 * hubs sharing PostgreSQL keep them in the store (shared-nonces.ts), so a replay to another hub is refused too.
 */
export class NonceCache implements NonceLedger {
  private current = new Set<string>();
  private previous = new Set<string>();
  private rotatedAt: number | undefined;

  constructor(private readonly windowMs: number) {}

  /** Records the nonce; false when it was already used within the window. */
  remember(key: string, now: number): boolean {
    this.rotatedAt ??= now;
    if (now - this.rotatedAt >= 2 * this.windowMs) {
      // Both generations are older than the window: nothing in them can still be replayed.
      this.previous = new Set();
      this.current = new Set();
      this.rotatedAt = now;
    } else if (now - this.rotatedAt >= this.windowMs) {
      this.previous = this.current;
      this.current = new Set();
      this.rotatedAt = now;
    }
    if (this.current.has(key) || this.previous.has(key)) return false;
    this.current.add(key);
    return true;
  }
}
