/**
 * The connector kinds and the host-key fingerprint format, without the settings schemas: the CLI validates its flags
 * with these while `--help` loads no schema library.
 */
export const CONNECTOR_KINDS = ['ssh', 'command', 'http'] as const;
export type ConnectorKind = (typeof CONNECTOR_KINDS)[number];

/** An OpenSSH SHA-256 host key fingerprint: `SHA256:` and 43 base64 characters. */
export const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/;
