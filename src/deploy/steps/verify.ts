import { errorMessage } from '../../core/errors.ts';
import type { DeployRun } from '../deploy-run.ts';
import type { DeployOutcome } from '../deploy-contract.ts';
import type { VerifyResult } from '../verify-served.ts';
import { rollback } from './rollback.ts';

/**
 * verify: the endpoint must serve this exact leaf with a chain clients accept → `verified`, and the previous
 * files are dropped from the record. A failure restores them and reloads again (`rolled_back`, step `verify`).
 * Without a verify target the hub's probes confirm what is served, and the previous set is kept for a manual
 * rollback.
 */
export async function verify(d: DeployRun): Promise<DeployOutcome | undefined> {
  if (!d.sub.verify) return undefined;
  const v = await verifyNow(d);
  if (!v.ok) {
    return rollback(
      d,
      'verify',
      {
        step: 'verify',
        exitCode: null,
        stderrTail: '',
        message: v.message,
        ...(v.servedFingerprint ? { servedFingerprint: v.servedFingerprint } : {}),
        ...(v.chainFailure ? { chainFailure: v.chainFailure } : {}),
        ...d.overrideDetail(),
      },
      true,
    );
  }
  await d.updateRecord({ state: 'verified', previous: [] });
  await d.emit('verified', undefined, {
    servedFingerprint: v.servedFingerprint,
    attempts: v.attempts,
    target: d.sub.verify,
    ...d.overrideDetail(),
  });
  return { state: 'verified' };
}

/** One verify through the target; never throws (a bad target is a failed verify). */
export async function verifyNow(d: DeployRun): Promise<VerifyResult> {
  try {
    return await d.target.verify(
      d.sub.verify!,
      {
        fingerprint: d.req.fingerprint,
        chainPems: d.req.bundle.chainPems,
        trustedRootPems: d.opts.trustedRootPems,
      },
      { totalMs: d.opts.verifyTimeoutMs, now: d.clock.now(), signal: d.signal },
    );
  } catch (e) {
    return { ok: false, attempts: 0, message: errorMessage(e) };
  }
}
