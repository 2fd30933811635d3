import { CertfleetError } from '../core/errors.ts';
import { formatIssuePath, type FleetConfig } from '../core/config-schema.ts';
import { connectorInputSchema, type ConnectorInput } from '../connectors/connector-config.ts';
import { ConnectorConfigStore } from './connector-config-store.ts';
import { subscriptionSpecOf } from '../core/subscription-spec.ts';
import type { Actor } from '../store/store.ts';
import { fieldChanges, type FieldChanges } from './field-changes.ts';
import type { RenewalService } from './renewal/renewal-service.ts';
import type { CertificateService } from './certificate-service.ts';
import type { HubContext } from './hub-context.ts';

export interface PlanStep {
  action: 'create' | 'update' | 'unchanged';
  kind: 'certificate' | 'endpoint' | 'subscription';
  name: string;
  /** Per changed field: `reload: "a" → "b"`, `window: added {...}`, `verify: removed (was {...})`. */
  changes?: string[];
  /** Fields the update removes (set today, absent from the file); the CLI warns about each. */
  removed?: string[];
  reissue?: boolean;
}

/** The plan, and the connector settings it sets (endpoint name → settings with their secrets). */
interface Plan {
  steps: PlanStep[];
  connectors: Map<string, ConnectorInput>;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Declarative apply: makes the store match the file for everything the file names (nothing absent from the file
 * is deleted). The whole plan is computed and every reference checked before the first change, so a bad file
 * changes nothing.
 */
export async function planApply(
  ctx: HubContext,
  certs: CertificateService,
  config: FleetConfig,
): Promise<PlanStep[]> {
  return (await plan(ctx, certs, config)).steps;
}

async function plan(ctx: HubContext, certs: CertificateService, config: FleetConfig): Promise<Plan> {
  const { store } = ctx;
  const steps: PlanStep[] = [];
  const problems: string[] = [];
  const connectorConfigs = new ConnectorConfigStore(store, ctx.sealer);
  const connectors = new Map<string, ConnectorInput>();

  const seen = (list: { name: string }[], kind: string) => {
    const names = new Set<string>();
    list.forEach((x, i) => {
      if (names.has(x.name)) problems.push(`${kind}[${i}].name: "${x.name}" appears twice in the file`);
      names.add(x.name);
    });
  };
  seen(config.certificates, 'certificates');
  seen(config.endpoints, 'endpoints');

  for (const [i, c] of config.certificates.entries()) {
    try {
      certs.assertIssuable(c);
    } catch (e) {
      problems.push(
        `certificates[${i}].issuer: ${(e as CertfleetError).message}; ${(e as CertfleetError).hint}`,
      );
    }
    const existing = await store.getCertificate(c.name);
    if (!existing) {
      steps.push({ action: 'create', kind: 'certificate', name: c.name });
      continue;
    }
    const changes: string[] = [];
    if (!same([...existing.sans].sort(), [...c.sans].sort()))
      changes.push(`sans: ${existing.sans.join(',')} → ${c.sans.join(',')}`);
    if (existing.keyType !== c.keyType) changes.push(`keyType: ${existing.keyType} → ${c.keyType}`);
    if (existing.issuer !== c.issuer) changes.push(`issuer: ${existing.issuer} → ${c.issuer}`);
    if (existing.lifetimeDays !== c.lifetimeDays)
      changes.push(`lifetimeDays: ${existing.lifetimeDays} → ${c.lifetimeDays}`);
    if (existing.profile !== c.profile)
      changes.push(`profile: ${existing.profile ?? '(issuer default)'} → ${c.profile ?? '(issuer default)'}`);
    steps.push({
      action: changes.length ? 'update' : 'unchanged',
      kind: 'certificate',
      name: c.name,
      ...(changes.length ? { changes, reissue: true } : {}),
    });
  }

  for (const [i, e] of config.endpoints.entries()) {
    const existing = await store.getEndpoint(e.name);
    let connector: ConnectorInput | undefined;
    if (e.connector) {
      // Checked in full here (the file schema takes any kind): every problem names its path in the file.
      const parsed = connectorInputSchema.safeParse(e.connector);
      if (parsed.success) connectors.set(e.name, (connector = parsed.data));
      else
        for (const issue of parsed.error.issues)
          problems.push(`${formatIssuePath(['endpoints', i, 'connector', ...issue.path])}: ${issue.message}`);
    }
    if (!existing) {
      steps.push({ action: 'create', kind: 'endpoint', name: e.name });
      continue;
    }
    if (existing.kind !== e.kind) {
      problems.push(
        `endpoints: "${e.name}" kind cannot change (${existing.kind} → ${e.kind}); delete and re-create the endpoint`,
      );
    }
    const diff = fieldChanges(
      { probeTargets: existing.probeTargets, labels: existing.labels },
      { probeTargets: e.probeTargets, labels: e.labels },
    );
    if (connector && existing.kind === 'connector') {
      const changed = await connectorConfigs.changes(existing, connector);
      if (changed.length) diff.changes.push(...changed);
      else connectors.delete(e.name); // unchanged: not set again (no event, no redeploy)
    }
    steps.push(stepOf('endpoint', e.name, diff));
  }

  const fileCerts = new Set(config.certificates.map((c) => c.name));
  const fileEndpoints = new Set(config.endpoints.map((e) => e.name));
  for (const [i, s] of config.subscriptions.entries()) {
    const name = `${s.endpoint}/${s.certificate}`;
    const cert = await store.getCertificate(s.certificate);
    const endpoint = await store.getEndpoint(s.endpoint);
    if (!cert && !fileCerts.has(s.certificate)) {
      problems.push(
        `subscriptions[${i}].certificate: certificate "${s.certificate}" does not exist; add it under certificates`,
      );
    }
    if (!endpoint && !fileEndpoints.has(s.endpoint)) {
      problems.push(
        `subscriptions[${i}].endpoint: endpoint "${s.endpoint}" does not exist; add it under endpoints`,
      );
    }
    if (!cert || !endpoint) {
      steps.push({ action: 'create', kind: 'subscription', name });
      continue;
    }
    const existing = (await store.listSubscriptions({ endpointId: endpoint.id, certificateId: cert.id }))[0];
    if (!existing) steps.push({ action: 'create', kind: 'subscription', name });
    else {
      const diff = fieldChanges({ ...subscriptionSpecOf(existing) }, { ...subscriptionSpecOf(s) });
      steps.push(stepOf('subscription', name, diff));
    }
  }

  if (problems.length) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `the config has ${problems.length} problem(s):\n  ${problems.join('\n  ')}`,
      'fix the file and apply again; nothing was changed',
      {
        details: { problems },
      },
    );
  }
  return { steps, connectors };
}

function stepOf(kind: PlanStep['kind'], name: string, diff: FieldChanges): PlanStep {
  if (!diff.changes.length) return { action: 'unchanged', kind, name };
  return {
    action: 'update',
    kind,
    name,
    changes: diff.changes,
    ...(diff.removed.length ? { removed: diff.removed } : {}),
  };
}

export async function runApply(
  ctx: HubContext,
  certs: CertificateService,
  /** Changed certificates are reissued like any renewal: coalesced, within the issuer's rate-limit budget. */
  renewal: Pick<RenewalService, 'renewNow'>,
  config: FleetConfig,
  actor: Actor,
  /** `connectorChanged`: a connector endpoint got new settings (the connector service deploys to it). */
  opts: { dryRun?: boolean; connectorChanged?: (endpointId: string) => void } = {},
): Promise<PlanStep[]> {
  const { steps, connectors } = await plan(ctx, certs, config);
  if (opts.dryRun) return steps;
  const { store } = ctx;
  for (const c of config.certificates) {
    const step = steps.find((s) => s.kind === 'certificate' && s.name === c.name)!;
    if (step.action === 'create') await certs.create(c, actor);
    if (step.action === 'update') {
      await store.updateCertificate(
        c.name,
        {
          sans: c.sans,
          keyType: c.keyType,
          issuer: c.issuer,
          lifetimeDays: c.lifetimeDays,
          profile: c.profile ?? null,
        },
        actor,
      );
      await renewal.renewNow(c.name, actor, 'config changed');
    }
  }
  for (const e of config.endpoints) {
    const step = steps.find((s) => s.kind === 'endpoint' && s.name === e.name)!;
    const { connector: _settings, ...spec } = e;
    if (step.action === 'create') await store.createEndpoint(spec, actor);
    if (step.action === 'update')
      await store.updateEndpoint(e.name, { probeTargets: e.probeTargets, labels: e.labels }, actor);
    const connector = connectors.get(e.name);
    if (connector) {
      const endpoint = (await store.getEndpoint(e.name))!;
      await new ConnectorConfigStore(store, ctx.sealer).set(endpoint, connector, actor);
      opts.connectorChanged?.(endpoint.id);
    }
  }
  for (const s of config.subscriptions) {
    const cert = (await store.getCertificate(s.certificate))!;
    const endpoint = (await store.getEndpoint(s.endpoint))!;
    await store.upsertSubscription(endpoint.id, cert.id, subscriptionSpecOf(s), actor);
  }
  return steps;
}
