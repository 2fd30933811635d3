import { z } from 'zod';
import { FINGERPRINT_RE, type ConnectorKind } from './connector-kinds.ts';

export { CONNECTOR_KINDS, FINGERPRINT_RE, type ConnectorKind } from './connector-kinds.ts';

/**
 * A connector endpoint's settings, per kind. What the API takes (`connectorInputSchema`) carries secrets in clear
 * (an SSH private key); what the hub stores replaces each with a value sealed to the endpoint (hub-side
 * connector-config-store.ts), and what the API returns (`ConnectorView`) only names the secrets that are set.
 */

export const hostKeyFingerprintSchema = z
  .string()
  .regex(
    FINGERPRINT_RE,
    'must be an OpenSSH SHA-256 fingerprint such as "SHA256:uYx3...Q" (43 base64 characters)',
  );

const seconds = (max: number, dflt: number) => z.number().int().min(1).max(max).default(dflt);

export const sshConnectorSchema = z.strictObject({
  kind: z.literal('ssh'),
  host: z.string().min(1).max(253),
  port: z.number().int().min(1).max(65535).default(22),
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_.-]{0,31}$/i, 'must be a user name (letters, digits, ".", "_", "-")'),
  /** Pinned host key; set later with `certfleet endpoint trust-host-key NAME`. */
  hostKeyFingerprint: hostKeyFingerprintSchema.optional(),
  /** TCP connect + SSH handshake + authentication. */
  connectTimeoutSeconds: seconds(300, 15),
  /** Each file request (read, stage, commit); the config test and reload have the pipeline's command timeout. */
  stepTimeoutSeconds: seconds(600, 30),
});

/** The hub runs the subscription's config test and reload with the outputs in a private temp dir. */
export const commandConnectorSchema = z.strictObject({
  kind: z.literal('command'),
});

export const connectorSettingsSchema = z.discriminatedUnion('kind', [
  sshConnectorSchema,
  commandConnectorSchema,
]);
export type ConnectorSettings = z.output<typeof connectorSettingsSchema>;
export type SshConnectorSettings = z.output<typeof sshConnectorSchema>;

/** Secrets each kind takes, by name; given in clear on input only. */
export const CONNECTOR_SECRETS: Record<ConnectorKind, readonly string[]> = {
  ssh: ['privateKey'],
  command: [],
};

const privateKeySchema = z
  .string()
  .max(64 * 1024)
  .regex(
    /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
    'must be a PEM or OpenSSH private key (the key file, not the .pub)',
  );

/** The API body of `PUT /endpoints/:name/connector`. */
export const connectorInputSchema = z.discriminatedUnion('kind', [
  sshConnectorSchema.extend({ privateKey: privateKeySchema }),
  commandConnectorSchema,
]);
export type ConnectorInput = z.output<typeof connectorInputSchema>;

/** What the hub stores: the settings plus each secret sealed (never returned by the API). */
export interface StoredConnector {
  settings: ConnectorSettings;
  sealed: Record<string, string>;
}

/** What the API shows: the settings and the names of the secrets that are set. */
export type ConnectorView = ConnectorSettings & { secrets: string[] };

export function connectorView(c: StoredConnector): ConnectorView {
  return { ...c.settings, secrets: Object.keys(c.sealed).sort() };
}
