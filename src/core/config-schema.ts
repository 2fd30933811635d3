import { z } from 'zod';
import { KEY_TYPES } from './types.ts';
import { NAME_PATTERN, NAME_RULE, sanProblem } from './names.ts';
import { windowProblems } from './window-cron.ts';

/** Schemas shared by the declarative config file and the HTTP API, so both reject the same input the same way. */

export const nameSchema = z.string().regex(NAME_PATTERN, NAME_RULE);

export const sanSchema = z.string().superRefine((value, ctx) => {
  const problem = sanProblem(value);
  if (problem)
    ctx.addIssue({
      code: 'custom',
      message: `"${value}" is not a valid DNS name or IP address: it ${problem}`,
    });
});

export const keyTypeSchema = z.enum(KEY_TYPES, { message: `must be one of: ${KEY_TYPES.join(', ')}` });

export const acmeProfileSchema = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be a profile name as the CA lists it, e.g. shortlived');

export const certificateSpecSchema = z.strictObject({
  name: nameSchema,
  sans: z.array(sanSchema).min(1, 'needs at least one name').max(100),
  keyType: keyTypeSchema.default('ecdsa-p256'),
  issuer: nameSchema.default('internal'),
  lifetimeDays: z.number().int().min(1).max(3650).default(30),
  /** ACME profile to order under (e.g. `shortlived`, `tlsserver`, `classic`); the issuer checks the CA offers it. */
  profile: acmeProfileSchema.optional(),
});
export type CertificateSpec = z.output<typeof certificateSpecSchema>;

export const probeTargetSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  sni: z.string().optional(),
  starttls: z.enum(['smtp', 'imap', 'pop3']).optional(),
});

/** An endpoint's probe target also says who probes it (a subscription's `verify` target is the hub's). */
export const endpointProbeTargetSchema = probeTargetSchema.extend({
  from: z.enum(['hub', 'agent', 'both']).optional(),
});

export const endpointSpecSchema = z.strictObject({
  name: nameSchema,
  kind: z.enum(['agent', 'connector']).default('agent'),
  probeTargets: z.array(endpointProbeTargetSchema).default([]),
  labels: z.record(z.string(), z.string()).default({}),
});
export type EndpointSpec = z.output<typeof endpointSpecSchema>;

/** What `PATCH /endpoints/:name` may change (name and kind are fixed); at least one field. */
export const endpointPatchSchema = z
  .strictObject({
    probeTargets: z.array(endpointProbeTargetSchema).optional(),
    labels: z.record(z.string(), z.string()).optional(),
  })
  .refine((p) => p.probeTargets !== undefined || p.labels !== undefined, {
    message: 'name probeTargets or labels to change',
  });

export const OUTPUT_FORMATS = [
  'cert',
  'chain',
  'fullchain',
  'key',
  'key-rsa',
  'der',
  'pkcs12',
  'jks',
  'combined',
] as const;

export const outputSpecSchema = z
  .strictObject({
    path: z.string().startsWith('/', 'must be an absolute path'),
    format: z.enum(OUTPUT_FORMATS, { message: `must be one of: ${OUTPUT_FORMATS.join(', ')}` }),
    owner: z.string().optional(),
    group: z.string().optional(),
    mode: z
      .string()
      .regex(/^0?[0-7]{3}$/, 'must be an octal mode such as "0640"')
      .optional(),
    passwordRef: z
      .string()
      .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:\/.+)$/, 'must be "env:NAME" or "file:/absolute/path"')
      .optional(),
    legacy: z.boolean().optional(),
  })
  .refine((o) => !['pkcs12', 'jks'].includes(o.format) || o.passwordRef, {
    message: 'pkcs12 and jks outputs need a passwordRef ("env:NAME" or "file:/path")',
    path: ['passwordRef'],
  });

export const changeWindowSchema = z
  .strictObject({
    cron: z.string().min(1),
    durationMinutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60),
    timezone: z.string().min(1).default('UTC'),
  })
  .superRefine((w, ctx) => {
    // Judged by croner here, at the hub and in `apply`, so no agent meets a window it cannot evaluate.
    for (const p of windowProblems(w)) ctx.addIssue({ code: 'custom', path: [p.field], message: p.message });
  });

export const subscriptionSpecSchema = z.strictObject({
  endpoint: nameSchema,
  certificate: nameSchema,
  outputs: z.array(outputSpecSchema).default([]),
  configTest: z.string().optional(),
  reload: z.string().optional(),
  window: changeWindowSchema.optional(),
  verify: probeTargetSchema.optional(),
  certbotLineage: z
    .string()
    .startsWith('/', 'must be an absolute directory, e.g. /etc/letsencrypt/live/web')
    .optional(),
});
export type SubscriptionSpecInput = z.output<typeof subscriptionSpecSchema>;

/**
 * An endpoint in an apply file: may carry its connector's settings (`{kind: ssh|command|http, ...}`), checked in
 * full by the connector's own schema (src/connectors/connector-file.ts in the CLI, connector-config.ts on the hub).
 */
export const endpointFileSchema = endpointSpecSchema
  .extend({ connector: z.looseObject({ kind: z.string() }).optional() })
  .refine((e) => !e.connector || e.kind === 'connector', {
    message: 'only endpoints of kind connector take connector settings',
    path: ['connector'],
  });

export const fleetConfigSchema = z.strictObject({
  certificates: z.array(certificateSpecSchema).default([]),
  endpoints: z.array(endpointFileSchema).default([]),
  subscriptions: z.array(subscriptionSpecSchema).default([]),
});
export type FleetConfig = z.output<typeof fleetConfigSchema>;

/** `certificates[2].sans[0]` from a zod issue path. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

/** One line per problem: `certificates[2].sans[0]: "*.bad_name" is not a valid DNS name ...`. */
export function formatZodError(error: z.ZodError): string[] {
  return error.issues.map((i) => (i.path.length ? `${formatIssuePath(i.path)}: ${i.message}` : i.message));
}
