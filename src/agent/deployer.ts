/**
 * The deploy pipeline for one version on one subscription:
 *
 *   validate → render (in memory) → write atomically (keeping the previous set) → `installed`
 *   → config test → change window? (`waiting_window`, return) → reload → `reloaded` → local verify → `verified`
 *
 * A failing config test, reload or verify puts the previous files back (all of them, so cert and key always
 * match), reloads again when a reload had already happened, and reports `rolled_back` with the step, exit code
 * and stderr tail. If the rollback fails too, `failed` (reason `rollback_failed`) carries both errors.
 * On a first install (no output existed before) there is nothing to roll back to: `failed` with the step as the
 * reason and its output. The new files are removed again when nothing used them yet (config test), and kept
 * once a reload ran: the server's config may already name them, and removing them would break its next start.
 *
 * Re-invocation: for `waiting_window` the caller calls `deploy` again with the same request at `nextWindowAt`.
 * The files are not rewritten when `<stateDir>/deploys/` shows they are still in place (compared by SHA-256);
 * the config test runs again (the server config may have changed meanwhile), then the reload.
 * A version already live is only re-verified, unless `req.redeploy` asks for the config test and reload again.
 *
 * Calls for the same subscription are serialised in-process. Before the first deploy after a start, the agent
 * must run `recoverPendingWrites(outputDirs(subscription))` (output-dirs.ts, atomic-write.ts); run-agent.ts does.
 */
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { systemClock, type Clock } from '../core/clock.ts';
import { errorMessage, isCertfleetError } from '../core/errors.ts';
import type { DeploymentState } from '../core/types.ts';
import { restoreFiles, writeFilesAtomic, type PreviousFile } from './atomic-write.ts';
import { checkWindow, windowState } from '../deploy/change-window.ts';
import type { DeployOutcome, DeployReporter, DeployRequest, DryRunPlan } from './deploy-contract.ts';
import {
  decodePrevious,
  encodePrevious,
  filesStillInPlace,
  loadRecord,
  readCurrentFiles,
  saveRecord,
  sha256,
  type DeployRecord,
} from './deploy-record.ts';
import { hookEnv, runCommand, type CommandResult } from './hooks.ts';
import { verifyServedFingerprint } from './local-verify.ts';
import { renderOutputs, type RenderedOutput } from './render-outputs.ts';
import { validateBundle } from './validate-bundle.ts';

export interface DeployOptions {
  /** The agent's state directory; deploy records go to `<stateDir>/deploys/`. */
  stateDir: string;
  clock?: Clock;
  signal?: AbortSignal;
  /** Render into a temp dir and run the config test there; touch no live file, never reload, report nothing. */
  dryRun?: boolean;
  /** Base environment for commands and password references (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Per command (config test, reload); default 60 s. */
  commandTimeoutMs?: number;
  /** How long local verify keeps retrying after a reload; default 5 s. */
  verifyTimeoutMs?: number;
  /** Extra roots the bundle's chain must end at; default: the chain only has to be internally consistent. */
  trustedRootPems?: string[];
  /** Dry run: keep the temp dir (it holds the private key, 0700) instead of removing it. */
  keepDryRunDir?: boolean;
}

type Step = 'config_test' | 'reload' | 'verify';

const queues = new Map<string, Promise<unknown>>();

export function deploy(
  req: DeployRequest,
  report: DeployReporter,
  opts: DeployOptions,
): Promise<DeployOutcome> {
  if (opts.dryRun) return dryRun(req, opts);
  const key = `${resolve(opts.stateDir)}\0${req.subscription.id}`;
  const prev = queues.get(key) ?? Promise.resolve();
  const run = prev.then(
    () => deployNow(req, report, opts),
    () => deployNow(req, report, opts),
  );
  queues.set(key, run);
  void run.finally(() => {
    if (queues.get(key) === run) queues.delete(key);
  });
  return run;
}

function commandDetail(step: Step, r: CommandResult): Record<string, unknown> {
  const how = r.timedOut
    ? `timed out after ${r.durationMs} ms and was killed`
    : r.exitCode === null
      ? `was ended by ${r.signal}`
      : `exited with code ${r.exitCode}`;
  return {
    step,
    exitCode: r.exitCode,
    stderrTail: r.stderrTail,
    message: `${step === 'config_test' ? 'config test' : 'reload'} command ${how}`,
    ...(r.timedOut ? { timedOut: true } : {}),
  };
}

async function deployNow(
  req: DeployRequest,
  report: DeployReporter,
  opts: DeployOptions,
): Promise<DeployOutcome> {
  const clock = opts.clock ?? systemClock;
  const { signal } = opts;
  const sub = req.subscription;
  const emit = async (state: DeploymentState, reason?: string, detail?: Record<string, unknown>) => {
    try {
      await report({
        state,
        ...(reason ? { reason } : {}),
        ...(detail ? { detail } : {}),
        at: clock.now().toISOString(),
      });
    } catch {
      // The reporter queues for the hub; a failure to report must not stop a rollback half-way.
    }
  };
  const fail = async (reason: string, detail: Record<string, unknown>): Promise<DeployOutcome> => {
    await emit('failed', reason, detail);
    return { state: 'failed', reason, detail };
  };

  // 1. Validate: nothing on disk changes for a bad bundle.
  const problem = validateBundle(req.bundle, {
    now: clock.now(),
    sans: req.sans,
    fingerprint: req.fingerprint,
    trustedRootPems: opts.trustedRootPems,
  });
  if (problem) return fail('validation', { check: problem.check, message: problem.message });

  if (sub.reload && sub.window) {
    try {
      checkWindow(sub.window);
    } catch (e) {
      return fail('config', errorDetail(e));
    }
  }

  // 2. Render every output in memory.
  let rendered: RenderedOutput[];
  try {
    rendered = await renderOutputs(req.bundle, sub.outputs, { env: opts.env, signal });
  } catch (e) {
    return fail('render', errorDetail(e));
  }
  const paths = rendered.map((r) => resolve(r.path));
  const env = hookEnv(
    {
      certificateName: req.certificateName,
      sans: req.sans,
      fingerprint: req.fingerprint,
      versionId: req.versionId,
      subscriptionId: sub.id,
      outputPaths: paths,
    },
    opts.env ?? process.env,
  );
  const run = (command: string, sig: AbortSignal | undefined = signal) =>
    runCommand(command, { env, timeoutMs: opts.commandTimeoutMs, signal: sig });
  const verify = async () => {
    try {
      return await verifyServedFingerprint(sub.verify!, req.fingerprint, {
        totalMs: opts.verifyTimeoutMs,
        signal,
      });
    } catch (e) {
      return { ok: false, attempts: 0, message: errorMessage(e), servedFingerprint: undefined };
    }
  };

  // 3. Write, unless this version's files are still in place from an earlier call (waiting_window, a resync).
  const sameVersion = (r?: DeployRecord) =>
    !!r && r.versionId === req.versionId && r.fingerprint === req.fingerprint;
  let record = await loadRecord(opts.stateDir, sub.id);
  const reuse =
    sameVersion(record) &&
    record!.state !== 'writing' &&
    record!.state !== 'rolled_back' &&
    (await filesStillInPlace(record!, paths));
  let previous: PreviousFile[] = [];
  if (reuse && !req.redeploy && (record!.state === 'reloaded' || record!.state === 'verified')) {
    // Already live (e.g. the agent restarted and resynced): confirm, and only redo the reload if it is not served.
    if (!sub.verify) return { state: record!.state };
    const v = await verify();
    if (v.ok) {
      if (record!.state !== 'verified') {
        record = await updateRecord(opts, record!, { state: 'verified', previous: [] });
        await emit('verified', undefined, { servedFingerprint: v.servedFingerprint, attempts: v.attempts });
      }
      return { state: 'verified' };
    }
  }
  if (reuse) {
    previous = decodePrevious(record!.previous);
  } else {
    let writing = false;
    try {
      // A record left in `writing` for this version holds the files from before the interrupted write.
      previous =
        sameVersion(record) && record!.state === 'writing'
          ? decodePrevious(record!.previous)
          : await readCurrentFiles(paths, signal);
      record = {
        subscriptionId: sub.id,
        versionId: req.versionId,
        fingerprint: req.fingerprint,
        state: 'writing',
        updatedAt: clock.now().toISOString(),
        outputs: rendered.map((r) => ({ path: resolve(r.path), sha256: sha256(r.data) })),
        previous: encodePrevious(previous),
      };
      await saveRecord(opts.stateDir, record, signal);
      writing = true;
      await writeFilesAtomic(rendered, { signal });
    } catch (e) {
      // writeFilesAtomic leaves every target untouched when it fails before its commit point; after it (a
      // rename failed), some targets are new: put the whole old set back so cert and key still match.
      let rollbackError: string | undefined;
      if (writing && (await changedSince(previous))) {
        rollbackError = await restoreFiles(previous).then(
          () => undefined,
          (re) => errorMessage(re),
        );
      }
      // Only the record written above is ours to close; a refusal before it leaves the last version's record
      // (and the files it keeps for a rollback) alone.
      if (writing) await updateRecord(opts, record!, { state: 'rolled_back', previous: [] });
      return fail('write', { ...errorDetail(e), ...(rollbackError ? { rollbackError } : {}) });
    }
    record = await updateRecord(opts, record, { state: 'installed' });
    await emit('installed', undefined, { outputs: paths });
  }

  const rollback = async (step: Step, detail: Record<string, unknown>, reloadAgain: boolean) => {
    if (previous.length === 0) {
      // Verified earlier and its previous set dropped: nothing older to go back to.
      return fail(step, { ...detail, rollbackError: 'no previous files are kept for this version' });
    }
    if (previous.every((p) => p.previous === 'absent')) return failFirstInstall(step, detail, reloadAgain);
    let rollbackError: string | undefined;
    try {
      // No signal: a rollback runs to the end even when the deploy was cancelled.
      await restoreFiles(previous);
    } catch (e) {
      rollbackError = `restoring the previous files failed: ${errorMessage(e)}`;
    }
    if (!rollbackError && reloadAgain && sub.reload) {
      const r = await run(sub.reload, undefined);
      if (!r.ok) {
        rollbackError = `the files were restored, but the reload after restoring ${commandDetail('reload', r).message}: ${r.stderrTail.slice(-500)}`;
      }
    }
    await updateRecord(opts, record!, { state: 'rolled_back', previous: [] });
    if (rollbackError) return fail('rollback_failed', { ...detail, rollbackError });
    await emit('rolled_back', step, detail);
    return { state: 'rolled_back' as const, reason: step, detail };
  };

  const failFirstInstall = async (step: Step, detail: Record<string, unknown>, reloaded: boolean) => {
    let removeError: string | undefined;
    if (!reloaded) {
      removeError = await restoreFiles(previous).then(
        () => undefined,
        (e) => `removing the new files failed: ${errorMessage(e)}`,
      );
    }
    await updateRecord(opts, record!, { state: 'rolled_back', previous: [] });
    return fail(step, {
      ...detail,
      firstInstall: true,
      filesRemoved: !reloaded && !removeError,
      ...(removeError ? { removeError } : {}),
    });
  };

  // 4. Config test against the new files; skipped when they were tested already and the window is still shut.
  const ws = sub.reload && sub.window ? windowState(sub.window, clock.now()) : { open: true };
  const waitNow = !ws.open && !req.overrideWindow;
  const nextWindowAt = ws.opensAt?.toISOString();
  const waiting = (): DeployOutcome => ({
    state: 'waiting_window',
    ...(nextWindowAt ? { nextWindowAt } : {}),
  });
  if (waitNow && record!.state === 'waiting_window' && record!.nextWindowAt === nextWindowAt)
    return waiting();
  if (sub.configTest) {
    const r = await run(sub.configTest);
    if (!r.ok) return rollback('config_test', commandDetail('config_test', r), false);
  }

  // 5. Change window: files stay staged, the reload waits; the caller calls again at nextWindowAt.
  if (waitNow) {
    record = await updateRecord(opts, record!, { state: 'waiting_window', nextWindowAt });
    await emit('waiting_window', 'change_window', { nextWindowAt, window: sub.window });
    return waiting();
  }
  const windowOverridden = !ws.open;
  const overrideDetail = windowOverridden ? { window_overridden: true } : {};

  // 6. Reload.
  let lastState: DeploymentState = 'installed';
  if (sub.reload) {
    const r = await run(sub.reload);
    // A failed reload may have half-applied (some services reload partially): reload again after restoring.
    if (!r.ok) return rollback('reload', { ...commandDetail('reload', r), ...overrideDetail }, true);
    record = await updateRecord(opts, record!, { state: 'reloaded' });
    await emit('reloaded', undefined, { durationMs: r.durationMs, ...overrideDetail });
    lastState = 'reloaded';
  }

  // 7. Local verify: the endpoint must serve this exact leaf.
  if (sub.verify) {
    const v = await verify();
    if (!v.ok) {
      return rollback(
        'verify',
        {
          step: 'verify',
          exitCode: null,
          stderrTail: '',
          message: v.message,
          ...(v.servedFingerprint ? { servedFingerprint: v.servedFingerprint } : {}),
          ...overrideDetail,
        },
        true,
      );
    }
    await updateRecord(opts, record!, { state: 'verified', previous: [] });
    await emit('verified', undefined, {
      servedFingerprint: v.servedFingerprint,
      attempts: v.attempts,
      target: sub.verify,
      ...overrideDetail,
    });
    return { state: 'verified' };
  }
  // No verify target: the hub's probes confirm what is served. The previous set is kept for a manual rollback.
  return { state: lastState };
}

/** True when any target no longer holds what it held before the write. */
async function changedSince(previous: PreviousFile[]): Promise<boolean> {
  const now = await readCurrentFiles(
    previous.map((p) => p.path),
    undefined,
  ).catch(() => undefined);
  if (!now) return true;
  return now.some((n, i) => {
    const p = previous[i].previous;
    return p === 'absent' || n.previous === 'absent' ? p !== n.previous : !p.equals(n.previous);
  });
}

async function updateRecord(
  opts: DeployOptions,
  record: DeployRecord,
  change: Partial<DeployRecord>,
): Promise<DeployRecord> {
  const next = { ...record, ...change, updatedAt: (opts.clock ?? systemClock).now().toISOString() };
  try {
    await saveRecord(opts.stateDir, next);
  } catch {
    // Losing the record only costs a rewrite of identical files on the next call.
  }
  return next;
}

function errorDetail(e: unknown): Record<string, unknown> {
  return isCertfleetError(e)
    ? { code: e.code, message: e.message, hint: e.hint }
    : { message: errorMessage(e) };
}

/** Renders into a temp dir, runs the config test there, and says what a real deploy would do. */
async function dryRun(req: DeployRequest, opts: DeployOptions): Promise<DeployOutcome> {
  const clock = opts.clock ?? systemClock;
  const sub = req.subscription;
  const plan: DryRunPlan = { ok: false, outputs: [] };
  const done = (p: DryRunPlan): DeployOutcome => ({ state: p.ok ? 'pending' : 'failed', dryRun: p });
  const problem = validateBundle(req.bundle, {
    now: clock.now(),
    sans: req.sans,
    fingerprint: req.fingerprint,
    trustedRootPems: opts.trustedRootPems,
  });
  if (problem) return done({ ...plan, validation: problem });
  const rendered = await renderOutputs(req.bundle, sub.outputs, { env: opts.env, signal: opts.signal });
  const dir = await mkdtemp(join(tmpdir(), 'certfleet-dry-run-'));
  try {
    const record = await loadRecord(opts.stateDir, sub.id);
    const inPlace =
      !!record &&
      record.versionId === req.versionId &&
      ['installed', 'waiting_window', 'reloaded', 'verified'].includes(record.state) &&
      (await filesStillInPlace(
        record,
        rendered.map((r) => resolve(r.path)),
      ));
    const used = new Set<string>();
    for (const [i, r] of rendered.entries()) {
      // Keep live file names so a config test can say $CERTFLEET_OUTPUT_DIR/fullchain.pem.
      let name = basename(r.path);
      if (used.has(name)) name = `${i}-${name}`;
      used.add(name);
      const stagedPath = join(dir, name);
      await writeFile(stagedPath, r.data, { mode: r.mode });
      await chmod(stagedPath, r.mode);
      plan.outputs.push({
        path: resolve(r.path),
        stagedPath,
        format: r.format,
        mode: `0${r.mode.toString(8)}`,
        ...(r.owner !== undefined ? { owner: String(r.owner) } : {}),
        ...(r.group !== undefined ? { group: String(r.group) } : {}),
        bytes: r.data.length,
        wouldWrite: !inPlace,
      });
    }
    plan.outputDir = dir;
    let ok = true;
    if (sub.configTest) {
      const env = {
        ...hookEnv(
          {
            certificateName: req.certificateName,
            sans: req.sans,
            fingerprint: req.fingerprint,
            versionId: req.versionId,
            subscriptionId: sub.id,
            outputPaths: plan.outputs.map((o) => o.stagedPath),
          },
          opts.env ?? process.env,
        ),
        CERTFLEET_DRY_RUN: '1',
        CERTFLEET_OUTPUT_DIR: dir,
      };
      const r = await runCommand(sub.configTest, {
        env,
        timeoutMs: opts.commandTimeoutMs,
        signal: opts.signal,
      });
      plan.configTest = {
        command: sub.configTest,
        ok: r.ok,
        exitCode: r.exitCode,
        stderrTail: r.stderrTail,
        timedOut: r.timedOut,
      };
      ok = r.ok;
    }
    if (sub.reload) {
      const ws = sub.window ? windowState(sub.window, clock.now()) : { open: true };
      plan.reload =
        ws.open || req.overrideWindow
          ? { command: sub.reload, at: 'now', ...(ws.open ? {} : { windowOverridden: true }) }
          : { command: sub.reload, at: ws.opensAt?.toISOString() ?? 'never' };
    }
    if (sub.verify) plan.verify = { host: sub.verify.host, port: sub.verify.port, sni: sub.verify.sni };
    plan.ok = ok;
    return done(plan);
  } finally {
    if (!opts.keepDryRunDir) await rm(dir, { recursive: true, force: true });
  }
}
