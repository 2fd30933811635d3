import { z } from 'zod';
import { acmeProfileSchema, nameSchema } from '../../core/config-schema.ts';
import { LIMIT_NAMES } from '../planner/rate-limit-budget.ts';
import { solverSchemas } from '../../solvers/registry.ts';

/**
 * The hub config sections owned by ACME issuance: `issuers`, `http01`, `planner`. Solver entries are checked
 * against the solver registry's schemas here, so a bad solver field fails at load time with its path.
 */

const limitSpec = z
  .strictObject({
    count: z.number().int().positive(),
    windowSeconds: z.number().positive(),
  })
  .nullable();

export const rateLimitsSchema = z.strictObject({
  limits: z.partialRecord(z.enum(LIMIT_NAMES), limitSpec).optional(),
  nonUrgentFraction: z.number().gt(0).max(1).optional(),
  ariRenewalsExempt: z.boolean().optional(),
  exactSetRenewalsExempt: z.boolean().optional(),
});
export type RateLimitsConfig = z.output<typeof rateLimitsSchema>;

const solverEntrySchema = z
  .looseObject({
    kind: z.string(),
    /** Only names equal to or under these suffixes use this solver; absent: every name. */
    domains: z.array(z.string().min(1)).min(1).optional(),
  })
  .superRefine((value, ctx) => {
    const schema = solverSchemas[value.kind as keyof typeof solverSchemas];
    if (!schema) {
      ctx.addIssue({
        code: 'custom',
        path: ['kind'],
        message: `unknown solver kind "${value.kind}"; use one of: ${Object.keys(solverSchemas).join(', ')}`,
      });
      return;
    }
    const { domains: _domains, ...rest } = value;
    const parsed = schema.safeParse(rest);
    if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ ...issue } as never);
  });
export type SolverEntry = z.output<typeof solverEntrySchema>;

const secretRef = z
  .string()
  .regex(/^(env:.+|file:\/.+)$/, 'must be "env:NAME" or "file:/absolute/path" (never the key itself)');

export const acmeIssuerConfigSchema = z.strictObject({
  name: nameSchema.refine((n) => n !== 'internal', '"internal" is the hub CA; pick another name'),
  kind: z.literal('acme'),
  directoryUrl: z.url(),
  email: z.email().optional(),
  termsOfServiceAgreed: z.boolean({ message: 'must be true or false: read the CA terms first' }),
  eab: z.strictObject({ kid: z.string().min(1), hmacKeyRef: secretRef }).optional(),
  /** PEM file with the CA that signs the directory's TLS certificate (private CAs, Pebble). */
  caFile: z.string().startsWith('/', 'must be an absolute path').optional(),
  solvers: z.array(solverEntrySchema).min(1, 'needs at least one solver'),
  /** The ACME profile (e.g. `shortlived`) ordered for this issuer's certificates that name none themselves. */
  profile: acmeProfileSchema.optional(),
  rateLimits: rateLimitsSchema.optional(),
  staging: z.strictObject({ directoryUrl: z.url() }).optional(),
});
export type AcmeIssuerConfig = z.output<typeof acmeIssuerConfigSchema>;

export const issuersSchema = z
  .array(acmeIssuerConfigSchema)
  .default([])
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((i, n) => {
      if (seen.has(i.name))
        ctx.addIssue({ code: 'custom', path: [n, 'name'], message: `issuer "${i.name}" is defined twice` });
      seen.add(i.name);
    });
  });

export const http01Schema = z
  .strictObject({
    /** A standalone http-01 listener (host:port), e.g. 0.0.0.0:80, besides the hub's own route. */
    listen: z
      .string()
      .regex(/^(\[[^\]]+\]|[^:]+):\d{1,5}$/, 'use HOST:PORT, e.g. 0.0.0.0:80')
      .optional(),
  })
  .default({});

export const plannerSchema = z
  .strictObject({
    intervalSeconds: z.number().positive().default(60),
    enabled: z.boolean().default(true),
    /** Orders placed at once in one planner run (an emergency campaign's throughput). */
    concurrency: z.number().int().min(1).max(64).default(4),
  })
  .default({ intervalSeconds: 60, enabled: true, concurrency: 4 });
export type PlannerConfig = z.output<typeof plannerSchema>;

/** The shape `hubConfigSchema` includes (spread into it). */
export const acmeHubConfigShape = {
  issuers: issuersSchema,
  http01: http01Schema,
  planner: plannerSchema,
};
