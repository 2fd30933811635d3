import { z } from 'zod';
import { FINGERPRINT_RE } from './connector-kinds.ts';
import { httpConnectorSchema, referencedSecrets } from './http-settings.ts';

export { CONNECTOR_KINDS, FINGERPRINT_RE, type ConnectorKind } from './connector-kinds.ts';

/**
 * A connector endpoint's settings, per kind. What the API takes (`connectorInputSchema`) carries secrets in clear
 * (an SSH private key, an http connector's `secrets`); what the hub stores replaces each with a value sealed to the endpoint (hub-side
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
  httpConnectorSchema,
]);
export type ConnectorSettings = z.output<typeof connectorSettingsSchema>;
export type SshConnectorSettings = z.output<typeof sshConnectorSchema>;
export type { HttpConnectorSettings } from './http-settings.ts';

/**
 * The secrets the settings take, by name, and the value given for each (undefined: keep the sealed one). The ssh
 * kind has its private key; an http connector has the secrets its requests reference (`{{secret:NAME}}`).
 */
export function secretsOf(input: ConnectorInput): Record<string, string | undefined> {
  switch (input.kind) {
    case 'ssh':
      return { privateKey: input.privateKey };
    case 'command':
      return {};
    case 'http':
      return Object.fromEntries(referencedSecrets(input).map((n) => [n, input.secrets[n]]));
  }
}

/** The settings without the secrets given in clear. */
export function settingsOf(input: ConnectorInput): ConnectorSettings {
  const {
    privateKey: _k,
    secrets: _s,
    ...settings
  } = input as ConnectorInput & {
    privateKey?: string;
    secrets?: unknown;
  };
  return connectorSettingsSchema.parse(settings);
}

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
  httpConnectorSchema.safeExtend({
    /** Values of the `{{secret:NAME}}` references; a reference not given keeps the value sealed before. */
    secrets: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a secret name'),
        z
          .string()
          .min(1)
          .max(64 * 1024),
      )
      .default({}),
  }),
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
