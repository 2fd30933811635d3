/**
 * Replay nonces (RFC 8555 section 7.2) kept from the CA's answers for the issuer's next signed requests. The CA
 * puts a fresh nonce in every answer to a POST; using it saves the newNonce round trip acme-client makes before
 * every POST (which, sent as HEAD, also cost a new TLS connection each: Node closes the connection after a HEAD
 * answer without Content-Length, as Pebble sends it). A nonce is handed out once; the newest goes first (older
 * ones are likelier to have expired at the CA, which a `badNonce` retry would then absorb). Bounded: beyond `max`
 * the oldest are dropped.
 */
export class NoncePool {
  private readonly nonces: string[] = [];

  constructor(private readonly max = 64) {}

  /** Keeps `nonce` for a later request (an empty or missing value is ignored). */
  keep(nonce: string | undefined): void {
    if (!nonce) return;
    this.nonces.push(nonce);
    if (this.nonces.length > this.max) this.nonces.shift();
  }

  /** An unused nonce, or undefined when none is kept (then the caller asks newNonce). */
  take(): string | undefined {
    return this.nonces.pop();
  }
}
