import { z } from 'zod';
import { CertfleetError } from '../core/errors.ts';
import { ChalltestsrvDnsSolver } from './dns-challtestsrv.ts';
import { CloudflareDnsSolver } from './dns-cloudflare.ts';
import { PropagationCheckedSolver } from './dns-propagation.ts';
import { Rfc2136DnsSolver } from './dns-rfc2136.ts';
import { ExecHookSolver } from './exec-hook.ts';
import { HubHttp01Solver, type Http01TokenStore } from './http01-responder.ts';
import type { Solver } from './solver.ts';
import { WebrootSolver } from './webroot.ts';

/** What factories may need from the composition root. */
export interface SolverDeps {
  http01Store?: Http01TokenStore;
}

export interface SolverFactory<S extends z.ZodType = z.ZodType> {
  schema: S;
  create(config: z.infer<S>, deps: SolverDeps): Solver;
}

/** Solvers by config `kind`; filled explicitly at the composition root (see registerBuiltinSolvers). */
export class SolverRegistry {
  private readonly factories = new Map<string, SolverFactory>();

  register<S extends z.ZodType>(kind: string, factory: SolverFactory<S>): void {
    if (this.factories.has(kind)) throw new Error(`solver kind "${kind}" registered twice`);
    this.factories.set(kind, factory as SolverFactory);
  }

  kinds(): string[] {
    return [...this.factories.keys()];
  }

  /** Validates `config` against its kind's schema and builds the solver; errors name the bad field. */
  create(config: unknown, deps: SolverDeps = {}): Solver {
    const kind = (config as { kind?: unknown } | null)?.kind;
    const factory = typeof kind === 'string' ? this.factories.get(kind) : undefined;
    if (!factory) {
      throw new CertfleetError(
        'CONFIG_INVALID',
        `unknown solver kind ${JSON.stringify(kind)}`,
        `use one of: ${this.kinds().join(', ')}`,
      );
    }
    const parsed = factory.schema.safeParse(config);
    if (!parsed.success) {
      const issues = parsed.error.issues
        .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
        .join('; ');
      throw new CertfleetError(
        'CONFIG_INVALID',
        `solver "${kind}" config is invalid: ${issues}`,
        'fix the solver settings',
        {
          details: {
            kind,
            issues: parsed.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
          },
        },
      );
    }
    return factory.create(parsed.data, deps);
  }
}

const propagation = z
  .object({
    resolvers: z.array(z.string().min(1)).min(1),
    timeoutSeconds: z.number().positive().max(3600).default(30),
  })
  .strict()
  .optional();

function withPropagation(solver: Solver, p: z.infer<typeof propagation>): Solver {
  return p
    ? new PropagationCheckedSolver(solver, { resolvers: p.resolvers, timeoutMs: p.timeoutSeconds * 1000 })
    : solver;
}

export const solverSchemas = {
  'http-01': z.object({ kind: z.literal('http-01') }).strict(),
  webroot: z
    .object({ kind: z.literal('webroot'), webroot: z.string().startsWith('/', 'must be an absolute path') })
    .strict(),
  challtestsrv: z.object({ kind: z.literal('challtestsrv'), managementUrl: z.url(), propagation }).strict(),
  exec: z
    .object({
      kind: z.literal('exec'),
      authCommand: z.string().min(1),
      cleanupCommand: z.string().min(1).optional(),
      challengeType: z.enum(['dns-01', 'http-01']).default('dns-01'),
      timeoutSeconds: z.number().positive().max(3600).default(120),
      propagation,
    })
    .strict(),
  cloudflare: z
    .object({
      kind: z.literal('cloudflare'),
      apiToken: z.string().min(1),
      baseUrl: z.url().optional(),
      zone: z.string().optional(),
      ttl: z.number().int().min(60).optional(),
      propagation,
    })
    .strict(),
  rfc2136: z
    .object({
      kind: z.literal('rfc2136'),
      server: z.string().min(1),
      port: z.number().int().min(1).max(65535).default(53),
      keyName: z.string().min(1),
      keyAlgorithm: z.enum(['hmac-sha256', 'hmac-sha384', 'hmac-sha512', 'hmac-sha1']).default('hmac-sha256'),
      keySecret: z.string().min(1),
      zone: z.string().optional(),
      ttl: z.number().int().positive().default(60),
      propagation,
    })
    .strict(),
};

/** Registers the built-in solver kinds. */
export function registerBuiltinSolvers(registry: SolverRegistry): SolverRegistry {
  registry.register('http-01', {
    schema: solverSchemas['http-01'],
    create: (_c, deps) => {
      if (!deps.http01Store) throw new Error('http-01 solver needs the hub http01Store');
      return new HubHttp01Solver(deps.http01Store);
    },
  });
  registry.register('webroot', {
    schema: solverSchemas.webroot,
    create: (c) => new WebrootSolver(c.webroot),
  });
  registry.register('challtestsrv', {
    schema: solverSchemas.challtestsrv,
    create: (c) => withPropagation(new ChalltestsrvDnsSolver(c.managementUrl), c.propagation),
  });
  registry.register('exec', {
    schema: solverSchemas.exec,
    create: (c) => {
      const s = new ExecHookSolver({
        authCommand: c.authCommand,
        cleanupCommand: c.cleanupCommand,
        challengeType: c.challengeType,
        timeoutMs: c.timeoutSeconds * 1000,
      });
      return c.challengeType === 'dns-01' ? withPropagation(s, c.propagation) : s;
    },
  });
  registry.register('cloudflare', {
    schema: solverSchemas.cloudflare,
    create: (c) =>
      withPropagation(
        new CloudflareDnsSolver({ apiToken: c.apiToken, baseUrl: c.baseUrl, zone: c.zone, ttl: c.ttl }),
        c.propagation,
      ),
  });
  registry.register('rfc2136', {
    schema: solverSchemas.rfc2136,
    create: (c) => withPropagation(new Rfc2136DnsSolver(c), c.propagation),
  });
  return registry;
}

/** The default registry with the built-in kinds. */
export const solverRegistry = registerBuiltinSolvers(new SolverRegistry());

export function createSolver(config: unknown, deps: SolverDeps = {}): Solver {
  return solverRegistry.create(config, deps);
}
