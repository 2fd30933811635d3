import { errorMessage } from '../../core/errors.ts';
import { errorDetail, type DeployRun } from '../deploy-run.ts';
import type { DeployOutcome } from '../deploy-contract.ts';
import { decodePrevious, encodePrevious, recordsVersion, sha256, stagedInPlace } from '../deploy-record.ts';
import type { DeployTarget, PreviousFile } from '../deploy-target.ts';
import { verifyNow } from './verify.ts';

/**
 * write: all outputs at once through the target (journaled, all old or all new), the files they replace kept in
 * the record for a rollback → `installed`. Skipped when this version's files are still in place from an earlier
 * call (waiting_window, a resync); a version already live is only re-verified, unless `req.redeploy` asks for
 * the config test and reload again.
 */
export async function write(d: DeployRun): Promise<DeployOutcome | undefined> {
  const { req, target } = d;
  d.record = await target.loadRecord(d.sub.id);
  const reuse = await stagedInPlace(target, d.record, req, d.paths);
  const state = d.record?.state;
  if (reuse && !req.redeploy && (state === 'reloaded' || state === 'verified')) {
    // Already live (e.g. the agent restarted and resynced): confirm, and only redo the reload if it is not served.
    if (!d.sub.verify) return { state };
    const v = await verifyNow(d);
    if (v.ok) {
      if (d.record!.state !== 'verified') {
        await d.updateRecord({ state: 'verified', previous: [] });
        await d.emit('verified', undefined, { servedFingerprint: v.servedFingerprint, attempts: v.attempts });
      }
      return { state: 'verified' };
    }
  }
  if (reuse) {
    d.previous = decodePrevious(d.record!.previous);
    return undefined;
  }
  let writing = false;
  try {
    // A record left in `writing` for this version holds the files from before the interrupted write.
    d.previous =
      recordsVersion(d.record, req) && d.record.state === 'writing'
        ? decodePrevious(d.record.previous)
        : await target.readCurrent(d.paths, d.signal);
    d.record = {
      subscriptionId: d.sub.id,
      versionId: req.versionId,
      fingerprint: req.fingerprint,
      state: 'writing',
      updatedAt: d.clock.now().toISOString(),
      outputs: d.rendered.map((r, i) => ({ path: d.paths[i], sha256: sha256(r.data) })),
      previous: encodePrevious(d.previous),
    };
    await target.saveRecord(d.record, d.signal);
    writing = true;
    await target.writeFilesAtomic(d.rendered, { signal: d.signal, hook: d.hook });
  } catch (e) {
    // A target leaves every file untouched when its write fails before the commit point; after it (a rename
    // failed), some are new: put the whole old set back so cert and key still match.
    let rollbackError: string | undefined;
    if (writing && (await changedSince(target, d.previous))) {
      rollbackError = await target.restore(d.previous, { hook: d.hook }).then(
        () => undefined,
        (re) => errorMessage(re),
      );
    }
    // Only the record written above is ours to close; a refusal before it leaves the last version's record
    // (and the files it keeps for a rollback) alone.
    if (writing) await d.updateRecord({ state: 'rolled_back', previous: [] });
    return d.fail('write', { ...errorDetail(e), ...(rollbackError ? { rollbackError } : {}) });
  }
  await d.updateRecord({ state: 'installed' });
  await d.emit('installed', undefined, { outputs: d.paths });
  return undefined;
}

/** True when any file no longer holds what it held before the write. */
async function changedSince(target: DeployTarget, previous: PreviousFile[]): Promise<boolean> {
  const now = await target.readCurrent(previous.map((p) => p.path)).catch(() => undefined);
  if (!now) return true;
  return now.some((n, i) => {
    const p = previous[i].previous;
    return p === 'absent' || n.previous === 'absent' ? p !== n.previous : !p.equals(n.previous);
  });
}
