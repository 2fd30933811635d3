/**
 * `certfleet rehearse`: a fleet lives through simulated days on a SimScheduler. Real: the hub context over a
 * temp-dir SQLite store, the PlannerService pass (renewal policy, rate-limit budget on scratch copies, coalesced
 * issuance committing in one transaction), the internal CA signing with dates from the simulated clock, the
 * deploy pipeline, the probe judgement and the alert conditions. Simulated: the endpoints (SimEndpoint), the
 * agents' delivery (instant when online), the CA's faults (FaultyIssuer), probes (they see what SimEndpoint
 * serves) and an operator who retries a rolled-back deploy some hours after its alert.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../core/log.ts';
import type { Certificate, CertificateVersion, DeploymentState } from '../core/types.ts';
import type { DeployReport, DeployRequest } from '../deploy/deploy-contract.ts';
import { runPipeline } from '../deploy/pipeline.ts';
import { mayMove, type ActorKind } from '../deploy/states.ts';
import type { AcmeRuntime } from '../hub/acme/acme-runtime.ts';
import type { HubContext } from '../hub/hub-context.ts';
import { openHubContext } from '../hub/hub.ts';
import { PlannerService } from '../hub/planner-service.ts';
import {
  evaluateRenewal,
  LETS_ENCRYPT_BUDGET,
  renewFractionFor,
  type PlanInput,
} from '../hub/planner/index.ts';
import { judgeDeployment } from '../hub/probe-judgement.ts';
import { Issuance } from '../hub/renewal/issuance.ts';
import { RateLimitStore } from '../hub/renewal/rate-limit-store.ts';
import { RenewalService } from '../hub/renewal/renewal-service.ts';
import { splitPemCertificates } from '../pki/inspect.ts';
import { versionKeyContext } from '../store/meta-catalogue.ts';
import { openSqliteStore } from '../store/sqlite/open-sqlite-store.ts';
import { AGENT_SILENT_AFTER_MS, AlertWatch, type EndpointFacts } from './alert-watch.ts';
import {
  HUB_RESTART_DOWN_MS,
  planFaults,
  seededRandom,
  activeFault,
  type FaultInstance,
} from './fault-plan.ts';
import { FaultyIssuer } from './faulty-issuer.ts';
import type { RehearsalOptions } from './rehearsal-options.ts';
import { RehearsalLedger, type RehearsalResult } from './rehearsal-ledger.ts';
import { SimEndpoint, type Served } from './sim-endpoint.ts';
import { SimScheduler } from './sim-scheduler.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
export const DEFAULT_START = new Date('2027-01-04T00:00:00Z');
const ISSUER = 'rehearsal-ca';
const DIRECTORY = 'https://rehearsal-ca.invalid/directory';
/** Agents long-poll: a new version reaches an online agent within seconds. */
const DELIVERY_MS = 5_000;
/** The hub probes an endpoint this long after it reports a reload, and tolerates the old leaf this long. */
const PROBE_AFTER_MS = MINUTE;
const PROBE_GRACE_MS = 10 * MINUTE;

/**
 * Where the rehearsal's hub keeps its SQLite store: in memory (tmpfs /dev/shm) when the machine has it, so a year of
 * commits costs CPU, not disk writes. It is the same store, with the same WAL journal and transactions.
 */
async function scratchDir(): Promise<string> {
  try {
    await access('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

/** The hub's renewal side, rebuilt from the store at each hub restart (everything in memory is dropped). */
interface HubParts {
  renewal: RenewalService;
  planner: PlannerService;
}

/** One pair of certificate and endpoint (one subscription each): the fleet's unit. */
interface Unit {
  cert: Certificate;
  endpoint: SimEndpoint;
  /** The current version as the hub last saw it. */
  current?: Served & { id: string };
  failures: number;
  deployment?: { versionId: string; state: DeploymentState; reason?: string; updatedAt: number };
  offline: number;
  silentSince?: number;
  /** A version waits for the agent to come back. */
  undelivered: boolean;
  /** The planner's next look at this certificate (a tick instant). */
  nextCheck?: number;
  /** The served certificate since this instant (for expired minutes). */
  servedSince: number;
}

export async function runRehearsal(
  opts: RehearsalOptions & { faultPlan?: FaultInstance[] },
): Promise<RehearsalResult> {
  const wallStart = performance.now();
  const start = (opts.start ?? DEFAULT_START).getTime();
  const end = start + opts.days * 24 * HOUR;
  const L = opts.lifetimeMs;
  const interval = opts.plannerIntervalMs ?? MINUTE;
  const operatorMs = opts.operatorResponseMs ?? 4 * HOUR;
  const faults =
    opts.faultPlan ??
    planFaults({
      kinds: opts.faults,
      seed: opts.seed,
      start,
      days: opts.days,
      lifetimeMs: L,
      endpoints: opts.endpoints,
    });
  const sched = new SimScheduler(start);
  const clock = sched.clock;
  const ledger = new RehearsalLedger(start, end);

  const dir = await mkdtemp(join(await scratchDir(), 'certfleet-rehearsal-'));
  const store = await openSqliteStore(join(dir, 'hub.db'), clock, { exclusive: true });
  let ctx: HubContext | undefined;
  let hub: HubParts | undefined;
  try {
    clock.set(start - 2 * L - 24 * HOUR); // the internal CA is made before the fleet's oldest certificate
    ctx = await openHubContext({
      dataDir: dir,
      clock,
      store,
      logger: createLogger({ level: 'silent' }),
      env: { CERTFLEET_MASTER_KEY: randomBytes(32).toString('hex') },
    });
    const units: Unit[] = [];
    const byName = new Map<string, number>();
    const issuer = new FaultyIssuer(ctx.internalCa, faults, clock, (name) => byName.get(name) ?? -1);
    ctx.issuers.set(ISSUER, issuer);
    // The rehearsal CA is counted against Let's Encrypt's published limits, like an ACME directory. It offers no
    // ARI (nor does the internal CA underneath), so renewal follows the lifetime rule.
    const acme = {
      entries: new Map([
        [
          ISSUER,
          {
            config: { name: ISSUER, directoryUrl: DIRECTORY },
            budget: LETS_ENCRYPT_BUDGET,
            issuer: { directory: async () => ({}) },
          },
        ],
      ]),
    } as unknown as AcmeRuntime;
    const c = ctx;
    // Certificate ids seed each certificate's renewal jitter: drawn from the seed, so a run can be repeated.
    const idRand = seededRandom(opts.seed ^ 0x1d5);
    const newCertificateId = () =>
      `rehearsal-${Math.floor(idRand() * 2 ** 32).toString(16)}-${Math.floor(idRand() * 2 ** 32).toString(16)}`;
    const startHub = (): HubParts => {
      const issuance = new Issuance(c, { rateLimits: new RateLimitStore(c, acme), newCertificateId });
      const renewal = new RenewalService(c, issuance, acme);
      return { renewal, planner: new PlannerService(renewal, { intervalMs: interval }) };
    };
    hub = startHub();
    let hubDown = false;

    // ---- what the hub, the probes and the alert rules see of each unit
    const served = new Map<string, Served>(); // leaf PEM → what a server loading it serves
    const leafKey = (pem: string) => pem.slice(0, pem.indexOf('-----END CERTIFICATE-----'));
    const facts = (i: number): EndpointFacts => {
      const u = units[i];
      const d = u.deployment;
      return {
        certificate: u.cert.name,
        endpoint: u.endpoint.key,
        ...(u.current ? { current: u.current } : {}),
        ...(u.endpoint.served ? { served: u.endpoint.served } : {}),
        failures: u.failures,
        ...(d && d.versionId === u.current?.id
          ? {
              deployment: {
                state: d.state,
                ...(d.reason ? { reason: d.reason } : {}),
                updatedAt: d.updatedAt,
              },
            }
          : {}),
        ...(u.silentSince !== undefined ? { silentSince: u.silentSince } : {}),
      };
    };
    const watch = new AlertWatch(faults, L, (i, alert) => {
      if (alert.kind === 'rolled_back' || alert.kind === 'deployment_failed')
        sched.after(operatorMs, () => operatorRetry(i));
    });
    const evaluateAlerts = (i: number) => {
      if (clock.now().getTime() >= start) watch.evaluate(i, facts(i), clock.now());
    };

    // ---- deployment: the real pipeline over a simulated endpoint, transitions checked against the table
    const move = (
      i: number,
      actor: ActorKind,
      versionId: string,
      state: DeploymentState,
      reason?: string,
    ) => {
      const u = units[i];
      const from = u.deployment?.versionId === versionId ? u.deployment.state : 'none';
      if (!mayMove(actor, from, state))
        ledger.illegalMoves.push(`${actor}: ${from} → ${state} on ${u.endpoint.key}`);
      u.deployment = { versionId, state, ...(reason ? { reason } : {}), updatedAt: clock.now().getTime() };
    };
    const deploy = async (i: number): Promise<void> => {
      const u = units[i];
      if (!u.current) return;
      if (u.offline > 0) {
        u.undelivered = true;
        return;
      }
      u.undelivered = false;
      const version = (await c.store.currentVersion(u.cert.id)) as CertificateVersion;
      const sealed = (await c.store.sealedKeyOf(version.id))!;
      const req: DeployRequest = {
        certificateName: u.cert.name,
        sans: u.cert.sans,
        versionId: version.id,
        fingerprint: version.fingerprint,
        bundle: {
          certPem: version.certPem,
          chainPems: splitPemCertificates(version.chainPem),
          keyPem: c.sealer.unseal(sealed, versionKeyContext(u.cert.id, version.fingerprint)),
        },
        subscription: {
          id: `sub-${i}`,
          outputs: [
            { path: `/srv/${u.endpoint.key}/fullchain.pem`, format: 'fullchain' },
            { path: `/srv/${u.endpoint.key}/privkey.pem`, format: 'key', mode: '0600' },
          ],
          configTest: 'nginx -t',
          reload: 'systemctl reload nginx',
        },
      };
      const report = async (r: DeployReport) => move(i, 'agent', version.id, r.state, r.reason);
      const outcome = await runPipeline(req, u.endpoint, report, { clock });
      ledger.deploys[outcome.state] = (ledger.deploys[outcome.state] ?? 0) + 1;
      if (outcome.state === 'reloaded') {
        // The fleet's seeding (before the start) is probed at once: the queue holds only the run's own instants.
        if (clock.now().getTime() < start) probe(i);
        else sched.after(PROBE_AFTER_MS, () => probe(i));
      }
      if (outcome.state === 'failed')
        ledger.failures.push(
          `${u.endpoint.key}: ${outcome.reason} ${JSON.stringify(outcome.detail)}`.slice(0, 300),
        );
      evaluateAlerts(i);
    };
    /** The simulated operator: on a rolled-back or failed deploy alert, retry it (`certfleet deploy`) until it holds. */
    const operatorRetry = async (i: number) => {
      const u = units[i];
      const d = u.deployment;
      if (!d || d.versionId !== u.current?.id || (d.state !== 'rolled_back' && d.state !== 'failed')) return;
      if (u.offline > 0) return void sched.after(operatorMs, () => operatorRetry(i));
      ledger.operatorRetries++;
      move(i, 'admin', d.versionId, 'pending');
      await deploy(i);
      const after = u.deployment!.state;
      if (after === 'rolled_back' || after === 'failed') sched.after(operatorMs, () => operatorRetry(i));
      else ledger.recoveredAfterRollback++;
    };
    const probe = (i: number) => {
      const u = units[i];
      const d = u.deployment;
      if (!d || !u.current || d.versionId !== u.current.id) return;
      const observations =
        u.offline > 0 || !u.endpoint.served
          ? []
          : [{ key: `${u.endpoint.key}:443`, fingerprint: u.endpoint.served.fingerprint }];
      const j = judgeDeployment({
        deployment: { state: d.state, updatedAt: new Date(d.updatedAt).toISOString() },
        expected: u.current.fingerprint,
        observations,
        now: clock.now(),
        graceMs: PROBE_GRACE_MS,
      });
      ledger.probes++;
      if (j.action === 'verify') move(i, 'probe', d.versionId, 'verified');
      else if (j.action === 'diverge') move(i, 'probe', d.versionId, 'diverged');
      else if (j.status === 'grace' && j.deadline) sched.at(j.deadline, () => probe(i));
      evaluateAlerts(i);
    };

    // ---- the planner loop: a pass at each tick that has certificates due, as the hub's 60 s loop would find them
    const ticks = new Map<number, number[]>();
    const scheduleCheck = (i: number, at: number) => {
      const tick = Math.max(
        Math.ceil(at / interval) * interval,
        Math.ceil((clock.now().getTime() + 1) / interval) * interval,
      );
      const u = units[i];
      if (u.nextCheck !== undefined && u.nextCheck <= tick && u.nextCheck > clock.now().getTime()) return;
      u.nextCheck = tick;
      const list = ticks.get(tick);
      if (list) list.push(i);
      else {
        ticks.set(tick, [i]);
        sched.at(tick, () => plannerTick(tick));
      }
    };
    const plannerTick = async (tick: number) => {
      const due = (ticks.get(tick) ?? []).filter((i) => units[i].nextCheck === tick);
      ticks.delete(tick);
      if (hubDown || due.length === 0) return; // a restart runs a full pass when the hub is back
      await plannerPass(due);
    };
    const plannerPass = async (due?: number[]) => {
      const list = due ?? units.map((_, i) => i);
      const report = await hub!.planner.runOnce(due ? due.map((i) => units[i].cert) : undefined);
      ledger.plannerPasses++;
      const deferred = new Map(report.deferred.map((d) => [d.certificate, d]));
      for (const d of report.deferred) ledger.deferrals[d.limit] = (ledger.deferrals[d.limit] ?? 0) + 1;
      for (const i of list) await afterPlanner(i, deferred.get(units[i].cert.name)?.freesAt);
    };
    const afterPlanner = async (i: number, deferredUntil?: string) => {
      const u = units[i];
      const { input, current, state } = await hub!.renewal.planInputFor(u.cert);
      if (current && current.id !== u.current?.id) await onIssued(i, current);
      u.failures = state.failures?.count ?? 0;
      const d = evaluateRenewal(input as PlanInput, hub!.renewal.policy);
      const next = deferredUntil ? Date.parse(deferredUntil) : d.dueAt.getTime();
      scheduleCheck(i, next);
      evaluateAlerts(i);
    };
    const onIssued = async (i: number, v: CertificateVersion, deliver = true) => {
      const u = units[i];
      const info: Served & { id: string } = {
        id: v.id,
        fingerprint: v.fingerprint,
        notBefore: Date.parse(v.notBefore),
        notAfter: Date.parse(v.notAfter),
      };
      served.set(leafKey(v.certPem), info);
      ledger.issued(clock.now().getTime(), u.current, info, registeredDomain(i));
      u.current = info;
      // Thresholds of the expiry rule for this version: the alerts are evaluated when each passes.
      for (const f of [1 / 3, 1 / 6, 1 / 15, 0]) {
        const at = info.notAfter - f * (info.notAfter - info.notBefore);
        if (at > Math.max(clock.now().getTime(), start)) sched.at(at, () => evaluateAlerts(i));
      }
      if (deliver) sched.after(DELIVERY_MS, () => deploy(i));
    };

    // ---- the fleet: certificates issued over the last renewal period before the start, so it is in steady state
    const rand = seededRandom(opts.seed ^ 0x5eed);
    const renewAfter = renewFractionFor(L) * L;
    const ages = Array.from({ length: opts.endpoints }, () => rand() * renewAfter).sort((a, b) => b - a);
    const pad = (n: number, w: number) => String(n).padStart(w, '0');
    const w = String(opts.endpoints).length;
    const registeredDomain = (i: number) => `site-${pad(Math.floor(i / 10), w)}.example`;
    for (let i = 0; i < opts.endpoints; i++) {
      clock.set(start - ages[i]);
      const name = `ep-${pad(i, w)}`;
      byName.set(name, i);
      const endpoint = new SimEndpoint(name, `/srv/${name}/fullchain.pem`, {
        lookup: (content) => served.get(leafKey(content)),
        reloadFails: () => activeFault(faults, 'reload-fails', clock.now().getTime(), i) !== undefined,
        onServe: (before) => {
          const u = units[i];
          const t = clock.now().getTime();
          if (before) ledger.servedUntil(i, before, u.servedSince, t);
          u.servedSince = t;
        },
      });
      const cert = await hub.renewal.issuance.create(
        {
          name,
          sans: [`${name}.${registeredDomain(i)}`],
          keyType: 'ecdsa-p256',
          issuer: ISSUER,
          lifetimeDays: L / (24 * HOUR),
        },
        'rehearsal',
      );
      units.push({
        cert,
        endpoint,
        failures: 0,
        offline: 0,
        undelivered: false,
        servedSince: clock.now().getTime(),
      });
      const v = (await c.store.currentVersion(cert.id))!;
      await onIssued(i, v, false);
      await deploy(i);
    }
    clock.set(start);
    ledger.resetCounters();
    issuer.resetCounts();

    // ---- faults that act on the hub and the agents (the CA's act inside FaultyIssuer)
    for (const f of faults) {
      if (f.kind === 'hub-restart') {
        sched.at(f.start, async () => {
          hubDown = true;
          await hub!.renewal.close();
        });
        sched.at(f.start + HUB_RESTART_DOWN_MS, async () => {
          hub = startHub(); // in-memory budgets, coalescer and schedule are rebuilt from the store
          hubDown = false;
          ledger.hubRestarts++;
          await plannerPass();
        });
      }
      if (f.kind === 'agent-offline')
        for (const i of f.affected ?? []) {
          sched.at(f.start, () => {
            const u = units[i];
            if (u.offline++ === 0) u.silentSince = clock.now().getTime();
            sched.after(AGENT_SILENT_AFTER_MS, () => evaluateAlerts(i));
          });
          sched.at(f.end, async () => {
            const u = units[i];
            if (--u.offline > 0) return;
            u.silentSince = undefined;
            evaluateAlerts(i);
            // Back online: the agent fetches its desired state and deploys what it missed.
            if (u.undelivered || u.deployment?.versionId !== u.current?.id) await deploy(i);
            else probe(i);
          });
        }
    }

    if (opts.onProgress)
      for (let d = 1; d <= opts.days; d++) sched.at(start + d * 24 * HOUR - 1, () => opts.onProgress!(d));
    for (let i = 0; i < units.length; i++) scheduleCheck(i, start);
    await sched.runUntil(end);
    for (const [i, u] of units.entries())
      if (u.endpoint.served) ledger.servedUntil(i, u.endpoint.served, u.servedSince, end);
    return ledger.result({
      options: opts,
      faults,
      alerts: watch.finish(),
      alertSpans: watch.spans,
      lifetimeMs: L,
      caAnswers: issuer.answered,
      retrySpacing: issuer.retrySpacing,
      eventsRun: sched.ran,
      wallMs: performance.now() - wallStart,
      endpointName: (i) => units[i].endpoint.key,
    });
  } finally {
    await hub?.renewal.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
