/**
 * What the hub API answers, in zod: one schema per shape, named (`.meta({ id })`) so the OpenAPI document shows it
 * once under components/schemas and a generated client gets one type per shape.
 *
 * The serializer (fastify-type-provider-zod) encodes every 2xx answer through its schema and drops what the
 * schema does not list, so resources (certificates, versions, endpoints, subscriptions, status rows, events, the
 * agent protocol) list every field: an allow-list, nothing unlisted ever leaves the hub. Reports whose items grow
 * with the features behind them (plan, probes, alerts, doctor, apply steps, imports) and deployment specs that
 * agents read are `looseObject`s: the fields named here are documented and checked, others pass through unchanged.
 * Tests build hubs with `checkResponses` (build-app.ts), which fails any answer the schema would shrink.
 */
import { z } from 'zod';
import { DEPLOYMENT_STATES, KEY_TYPES } from '../../core/types.ts';
import {
  OUTPUT_FORMATS,
  changeWindowSchema,
  outputSpecSchema,
  probeTargetSchema,
} from '../../core/config-schema.ts';
import { API_TOKEN_KINDS } from '../../store/store.ts';
import { commandConnectorSchema, sshConnectorSchema } from '../../connectors/connector-config.ts';
import { httpConnectorSchema } from '../../connectors/http-settings.ts';
import { SEALED_KEY_ALG, type SealedKey } from '../../protocol/sealed-key.ts';
import type { BundleResponse, DesiredState, EnrollResponse, HubCaResponse } from '../../protocol/wire.ts';

const instant = z.string().describe('RFC 3339 date-time');
const json = z.record(z.string(), z.unknown());

/**
 * A documented object whose other fields pass through (typed as its documented fields, so the interfaces behind
 * it, which have no index signature, still satisfy it).
 */
const openObject = <S extends z.ZodRawShape>(shape: S): z.ZodObject<S> =>
  z.looseObject(shape) as unknown as z.ZodObject<S>;
/** An object documented only as an object: every field passes through. */
const anyObject = (): z.ZodType<object> => z.looseObject({});

/** Every error answer: `CertfleetError#toJSON()` and the error handler in build-app.ts. */
export const errorSchema = z
  .object({
    code: z.string().describe('stable error code (src/core/errors.ts ERROR_CATALOGUE)'),
    message: z.string().describe('what went wrong'),
    hint: z.string().describe('how to fix it'),
    details: json.optional().describe('machine-readable facts, never secrets'),
  })
  .meta({ id: 'Error' });

export const versionSchema = z
  .object({
    id: z.string(),
    serial: z.string().describe('hex'),
    fingerprint: z.string().describe('SHA-256 of the leaf DER, lower-case hex'),
    notBefore: instant,
    notAfter: instant,
    createdAt: instant,
  })
  .meta({ id: 'Version' });

export const certificateSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    sans: z.array(z.string()),
    keyType: z.enum(KEY_TYPES),
    issuer: z.string().describe('"internal" or the name of an ACME issuer of the hub config'),
    lifetimeDays: z.number(),
    profile: z.string().optional().describe("the ACME profile it orders (absent: the issuer's default)"),
    createdAt: instant,
    updatedAt: instant,
    current: versionSchema.nullable().describe('the version endpoints should serve (null: none issued yet)'),
  })
  .meta({ id: 'Certificate' });

export const certificateDetailSchema = certificateSchema
  .extend({
    currentPem: z.string().nullable().describe('leaf + intermediates of the current version, PEM'),
    subscriptions: z.array(z.object({ id: z.string(), endpoint: z.string().optional() })),
  })
  .meta({ id: 'CertificateDetail' });

const probeTarget = openObject(probeTargetSchema.shape).meta({ id: 'ProbeTarget' });

export const endpointSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.enum(['agent', 'connector']),
    probeTargets: z.array(probeTarget),
    labels: z.record(z.string(), z.string()),
    createdAt: instant,
    updatedAt: instant,
  })
  .meta({ id: 'Endpoint' });

export const endpointWithContactSchema = endpointSchema
  .extend({ lastSeenAt: instant.nullable().describe("the agent's last signed request (null: never)") })
  .meta({ id: 'EndpointWithContact' });

/** Deployment specs are read by agents and connectors: new spec fields must reach them, so they pass through. */
const deploymentSpecShape = {
  outputs: z.array(
    openObject({
      ...outputSpecSchema.shape,
      format: z.string().describe(`one of: ${OUTPUT_FORMATS.join(', ')}`),
    }).meta({
      id: 'Output',
    }),
  ),
  configTest: z.string().optional(),
  reload: z.string().optional(),
  window: openObject(changeWindowSchema.shape).meta({ id: 'ChangeWindow' }).optional(),
  verify: probeTarget.optional(),
};

export const deploymentSchema = z
  .object({
    id: z.string(),
    subscriptionId: z.string(),
    versionId: z.string(),
    state: z.enum(DEPLOYMENT_STATES),
    reason: z.string().optional(),
    detail: json.optional(),
    createdAt: instant,
    updatedAt: instant,
  })
  .meta({ id: 'Deployment' });

export const subscriptionSchema = openObject({
  id: z.string(),
  endpointId: z.string(),
  certificateId: z.string(),
  endpoint: z.string(),
  certificate: z.string(),
  ...deploymentSpecShape,
  createdAt: instant,
  updatedAt: instant,
}).meta({ id: 'Subscription' });

export const subscriptionWithDeploymentSchema = subscriptionSchema
  .extend({
    endpointKind: z.enum(['agent', 'connector']),
    deployment: deploymentSchema.nullable().describe("the current version's deployment"),
  })
  .meta({ id: 'SubscriptionWithDeployment' });

export const statusRowSchema = z
  .object({
    subscriptionId: z.string(),
    certificate: z.string(),
    endpoint: z.string(),
    endpointKind: z.enum(['agent', 'connector']),
    version: z
      .object({ id: z.string(), serial: z.string(), fingerprint: z.string(), notAfter: instant })
      .nullable(),
    deployment: z
      .object({
        state: z.enum(DEPLOYMENT_STATES),
        reason: z.string().nullable(),
        summary: z
          .string()
          .nullable()
          .describe('why it is in this state, in one line (step, exit code, stderr)'),
        updatedAt: instant,
      })
      .nullable(),
    lastSeenAt: instant.nullable(),
  })
  .meta({ id: 'StatusRow' });

export const eventSchema = z
  .object({
    id: z.number().int(),
    at: instant,
    actor: z.string().describe('who did it: a token (kind:name), an agent, the planner, a probe'),
    kind: z.string().describe('e.g. certificate.created, version.issued, deployment.failed'),
    subject: z.string().describe('e.g. certificate:web'),
    data: json,
  })
  .meta({ id: 'Event' });

export const enrollmentTokenSchema = z
  .object({
    endpoint: z.string(),
    token: z.string().describe('one-time secret; give it to `certfleet agent enroll`'),
    expiresAt: instant,
    caFingerprint: z.string().describe('SHA-256 of the hub CA root, pinned by the agent'),
  })
  .meta({ id: 'EnrollmentToken' });

export const redeploySchema = z
  .object({
    certificate: z.string(),
    version: z.object({ id: z.string(), serial: z.string(), fingerprint: z.string() }),
    overrideWindow: z.boolean(),
    requests: z.array(
      z.object({
        endpoint: z.string(),
        subscriptionId: z.string(),
        previousState: z.string().nullable(),
        token: z.string(),
      }),
    ),
  })
  .meta({ id: 'RedeployResponse' });

export const healthSchema = z
  .object({
    status: z.literal('ok'),
    revision: z.number(),
    leader: z.boolean().describe('whether this hub runs the leader jobs now (always true on SQLite)'),
  })
  .meta({ id: 'Health' });

export const apiTokenSchema = z
  .object({
    name: z.string(),
    role: z.enum(API_TOKEN_KINDS),
    createdAt: instant,
    expiresAt: instant.nullable(),
    lastUsedAt: instant.nullable().describe('last request made with it (null: never)'),
  })
  .meta({ id: 'ApiToken' });

export const issuedApiTokenSchema = z
  .object({ token: apiTokenSchema, secret: z.string().describe('shown in this answer only') })
  .meta({ id: 'IssuedApiToken' });

/** A connector endpoint's settings as the API shows them: never a secret, only the names of those set. */
const secretNames = z.array(z.string()).describe('names of the secrets that are set (never their values)');
export const connectorViewSchema = z
  .discriminatedUnion('kind', [
    z.object({ ...sshConnectorSchema.shape, secrets: secretNames }),
    z.object({ ...commandConnectorSchema.shape, secrets: secretNames }),
    z.object({ ...httpConnectorSchema.shape, secrets: secretNames }),
  ])
  .meta({ id: 'Connector' });

export const hostKeyScanSchema = z
  .object({
    endpoint: z.string(),
    host: z.string(),
    port: z.number().int(),
    fingerprint: z.string().describe('OpenSSH SHA256 fingerprint of the key the host presented'),
    keyType: z.string(),
    pinned: z.string().nullable().describe('the fingerprint pinned now (null: none)'),
  })
  .meta({ id: 'HostKeyScan' });

/** 204 answers: no body. */
export const noContent = z.null().describe('no content');

// Reports: the fields named are documented; items pass through whole.

const issuerError = z.object({ code: z.string(), message: z.string(), hint: z.string() });

export const applyResultSchema = openObject({
  dryRun: z.boolean(),
  steps: z.array(
    openObject({
      action: z.enum(['create', 'update', 'unchanged']),
      kind: z.enum(['certificate', 'endpoint', 'subscription']),
      name: z.string(),
      changes: z.array(z.string()).optional(),
      reissue: z.boolean().optional(),
    }),
  ),
}).meta({ id: 'ApplyResult' });

export const planSchema = openObject({
  now: instant,
  entries: z.array(
    openObject({
      certificateName: z.string(),
      registeredDomains: z.array(z.string()),
      decision: openObject({ reason: z.string(), message: z.string(), reissue: z.boolean() }),
      dueAt: instant,
      headroom: z.array(anyObject()),
      deferral: anyObject().optional(),
      request: anyObject(),
    }),
  ),
}).meta({ id: 'Plan' });

export const dryRunSchema = openObject({
  ok: z.boolean(),
  certificate: z.string(),
  issuer: z.string(),
  directoryUrl: z.string().optional(),
  steps: z.array(openObject({ name: z.string(), ms: z.number() })),
  totalMs: z.number(),
  issued: z.object({ serial: z.string(), notAfter: instant, fingerprint: z.string() }).optional(),
  error: issuerError.optional(),
}).meta({ id: 'DryRunResult' });

export const revokeSchema = openObject({
  revoked: z.object({ serial: z.string(), reason: z.string(), issuer: z.string() }),
  note: z.string().optional(),
  renewed: z.object({ serial: z.string(), notAfter: instant, id: z.string() }).optional(),
  renewalError: issuerError.optional(),
}).meta({ id: 'RevokeResult' });

export const probeResultSchema = openObject({
  endpointId: z.string(),
  targetKey: z.string().describe('host:port[/sni][+starttls]'),
  at: instant,
  ok: z.boolean(),
  fingerprint: z.string().optional(),
  serial: z.string().optional(),
  notBefore: instant.optional(),
  notAfter: instant.optional(),
  tlsVersion: z.string().optional(),
  handshakeMs: z.number().optional(),
  errorKind: z.string().optional(),
  errorMessage: z.string().optional(),
}).meta({ id: 'ProbeResult' });

export const probeViewSchema = probeResultSchema.extend({ endpoint: z.string() }).meta({ id: 'ProbeView' });

export const endpointProbeReportSchema = openObject({
  endpoint: z.string(),
  results: z.array(probeResultSchema),
  judgements: z.array(anyObject()),
}).meta({ id: 'EndpointProbeReport' });

export const servedRowSchema = openObject({
  subscriptionId: z.string(),
  certificate: z.string(),
  endpoint: z.string(),
  fingerprint: z.string().nullable(),
  matchesCurrent: z.boolean(),
  notAfter: instant.nullable(),
  notBefore: instant.nullable(),
  probedAt: instant,
  ok: z.boolean(),
  error: z.object({ kind: z.string(), message: z.string() }).nullable(),
}).meta({ id: 'ServedRow' });

export const alertsSchema = openObject({
  alerts: z.array(openObject({ key: z.string(), kind: z.string(), severity: z.string(), title: z.string() })),
  evaluating: z.boolean(),
  channels: json,
}).meta({ id: 'Alerts' });

export const alertTestSchema = openObject({ ok: z.boolean(), results: z.array(anyObject()) }).meta({
  id: 'AlertTestResult',
});

export const alertEvaluationSchema = openObject({ active: z.number(), notified: z.array(anyObject()) }).meta({
  id: 'AlertEvaluation',
});

export const doctorReportSchema = openObject({
  ok: z.boolean(),
  at: instant,
  issuers: z.array(anyObject()),
  certificates: z.array(anyObject()),
}).meta({ id: 'DoctorReport' });

export const importResultSchema = openObject({
  dryRun: z.boolean(),
  certificates: z.array(anyObject()),
  accounts: z.array(anyObject()),
  unmapped: z.array(anyObject()),
}).meta({ id: 'CertbotImportResult' });

// The agent protocol (src/protocol/wire.ts holds the TypeScript side; the annotations below keep both in step).

export const hubCaSchema: z.ZodType<HubCaResponse> = z
  .object({ rootPem: z.string(), intermediatePem: z.string() })
  .meta({ id: 'HubCa' });

export const enrollResponseSchema: z.ZodType<EnrollResponse> = z
  .object({ endpointId: z.string(), endpointName: z.string() })
  .meta({ id: 'EnrollResponse' });

const sealedKeySchema: z.ZodType<SealedKey> = z
  .object({
    alg: z.literal(SEALED_KEY_ALG),
    epk: z.string().describe('ephemeral X25519 public key, raw base64url'),
    iv: z.string(),
    ct: z.string(),
    tag: z.string(),
  })
  .meta({ id: 'SealedKey' });

export const bundleSchema: z.ZodType<BundleResponse> = z
  .object({
    versionId: z.string(),
    certificateName: z.string(),
    fingerprint: z.string(),
    certPem: z.string(),
    chainPems: z.array(z.string()),
    sealedKey: sealedKeySchema,
  })
  .meta({ id: 'Bundle' });

export const desiredStateSchema: z.ZodType<DesiredState> = z
  .object({
    revision: z.number(),
    endpointId: z.string(),
    endpointName: z.string(),
    subscriptions: z.array(
      openObject({
        subscriptionId: z.string(),
        certificateName: z.string(),
        sans: z.array(z.string()),
        spec: openObject(deploymentSpecShape).meta({ id: 'DeploymentSpec' }),
        version: z
          .object({ id: z.string(), fingerprint: z.string(), serial: z.string(), notAfter: instant })
          .optional(),
        bundle: bundleSchema.optional(),
        redeploy: z.object({ token: z.string(), overrideWindow: z.boolean() }).optional(),
      }),
    ),
    probes: z
      .object({ targets: z.array(probeTarget), intervalSeconds: z.number(), timeoutMs: z.number() })
      .optional()
      .describe('the targets the agent probes itself (from: agent | both); absent when there are none'),
  })
  .meta({ id: 'DesiredState' });

export const reportAcceptedSchema = z.object({ accepted: z.number().int() }).meta({ id: 'ReportAccepted' });
