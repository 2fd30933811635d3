import { z } from 'zod';
import { formatIssuePath } from '../core/config-schema.ts';
import { REPORTED_STATES, type ProbeTarget } from '../core/types.ts';
import type { ProbeObservation } from '../probe/probe-targets.ts';
import type { SubscriptionSpec } from '../core/subscription-spec.ts';
import type { SealedKey } from './sealed-key.ts';

/** The agent ↔ hub wire format (`/api/v1/agent/*`): the hub validates requests with these schemas. */

export const enrollRequestSchema = z.object({
  token: z.string().min(1).max(200),
  /** Ed25519 public key for request signatures, raw base64url. */
  signingKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  /** X25519 public key bundles are sealed to, raw base64url. */
  sealingKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
});
export type EnrollRequest = z.infer<typeof enrollRequestSchema>;

export interface EnrollResponse {
  endpointId: string;
  endpointName: string;
}

export interface HubCaResponse {
  rootPem: string;
  intermediatePem: string;
}

/** One subscription as the agent sees it: what to deploy and the version that should be served. */
export interface DesiredSubscription {
  subscriptionId: string;
  certificateName: string;
  sans: string[];
  spec: SubscriptionSpec;
  /** Absent until the certificate has a version. */
  version?: { id: string; fingerprint: string; serial: string; notAfter: string };
  /**
   * The version's bundle (private key sealed to this agent), inlined when the agent listed the versions it holds
   * (`have=` on the long-poll) and this one is not among them: one request fewer per agent per new version.
   * Absent otherwise; agents then fetch `GET /agent/bundle/:versionId` as before.
   */
  bundle?: BundleResponse;
  /**
   * A manual deploy request for this version (`certfleet deploy [--now]`): an agent that has not acted on this
   * token yet runs the pipeline again, reloading even outside the change window when `overrideWindow`. Agents that
   * do not know the field ignore it.
   */
  redeploy?: { token: string; overrideWindow: boolean };
}

export interface DesiredState {
  revision: number;
  endpointId: string;
  endpointName: string;
  subscriptions: DesiredSubscription[];
  /**
   * The endpoint's targets the agent probes itself (`from: agent | both`) and how: every `intervalSeconds`, and
   * after each deploy it finishes; results go to `POST /agent/probe-results`. Absent when there are none (and
   * from hubs that predate agent probes).
   */
  probes?: { targets: ProbeTarget[]; intervalSeconds: number; timeoutMs: number };
}

export interface BundleResponse {
  versionId: string;
  certificateName: string;
  fingerprint: string;
  certPem: string;
  chainPems: string[];
  sealedKey: SealedKey;
}

export const reportSchema = z.object({
  subscriptionId: z.string().uuid(),
  versionId: z.string().uuid(),
  /** Only what an agent does (src/deploy/states.ts): pending is the hub's, diverged its probes'. */
  state: z.enum(REPORTED_STATES, {
    error: `an agent reports one of ${REPORTED_STATES.join(', ')}; pending is set by the hub, diverged by its probes`,
  }),
  reason: z.string().max(2000).optional(),
  detail: z.record(z.string(), z.unknown()).optional(),
  at: z.string().datetime({ offset: true }),
});
export type AgentReport = z.infer<typeof reportSchema>;

/** One report, or a batch (the agent flushes its on-disk queue in one request). */
export const reportBodySchema = z.union(
  [reportSchema, z.object({ reports: z.array(reportSchema).max(500) })],
  {
    // Name the problem in the form that was sent (not zod's bare "Invalid input" for a union).
    error: (iss) => {
      if (iss.code !== 'invalid_union') return undefined;
      const batch = typeof iss.input === 'object' && iss.input !== null && 'reports' in iss.input;
      const problems = iss.errors[batch ? 1 : 0] ?? [];
      return problems.map((p) => `${formatIssuePath(p.path)}: ${p.message}`).join('; ') || undefined;
    },
  },
);

/** One probe result from the agent's side (src/probe/probe-targets.ts `ProbeObservation`). */
export const agentProbeResultSchema = z.object({
  targetKey: z.string().min(1).max(600),
  at: z.string().datetime({ offset: true }),
  ok: z.boolean(),
  fingerprint: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  serial: z
    .string()
    .regex(/^[0-9a-f]{1,64}$/i)
    .optional(),
  notBefore: z.string().datetime({ offset: true }).optional(),
  notAfter: z.string().datetime({ offset: true }).optional(),
  errorKind: z.string().max(64).optional(),
  errorMessage: z.string().max(2000).optional(),
  tlsVersion: z.string().max(32).optional(),
  handshakeMs: z.number().min(0).max(600_000).optional(),
}) satisfies z.ZodType<ProbeObservation>;
export type AgentProbeResult = z.infer<typeof agentProbeResultSchema>;

export const agentProbeReportSchema = z.object({ results: z.array(agentProbeResultSchema).min(1).max(500) });

/** What the hub answers to a probe report: what it now concludes per subscription with targets. */
export const agentProbeReportResponseSchema = z.object({
  accepted: z.number().int(),
  judgements: z.array(
    z.object({ certificate: z.string(), status: z.string(), action: z.enum(['verify', 'diverge', 'none']) }),
  ),
});
