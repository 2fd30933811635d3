import type { SUBSCRIPTION_SPEC_FIELDS } from '../core/subscription-spec.ts';
import type { Bundle, Subscription } from '../core/types.ts';

type SubscriptionSpecField = (typeof SUBSCRIPTION_SPEC_FIELDS)[number];
import type { DeploymentState, ReportedState } from './states.ts';

/**
 * The seam between whoever learns what to deploy (the agent's subscriber, later a hub connector) and the deploy
 * pipeline (pipeline.ts): one version for one subscription goes in; the pipeline reports every transition through
 * `report`, which the caller forwards to the hub (the agent queues while the hub is unreachable).
 */
export interface DeployRequest {
  certificateName: string;
  /** The certificate's names, so the pipeline can check the bundle covers them. */
  sans: string[];
  versionId: string;
  fingerprint: string;
  bundle: Bundle;
  subscription: Pick<Subscription, 'id' | SubscriptionSpecField>;
  /** Reload now even outside the change window (`--now`); the override is reported as an event. */
  overrideWindow?: boolean;
  /**
   * A manual redeploy (`certfleet deploy`): run config test, reload and verify even when this version is already
   * live (files still in place are not rewritten).
   */
  redeploy?: boolean;
}

export interface DeployReport {
  state: ReportedState;
  reason?: string;
  detail?: Record<string, unknown>;
  at: string;
}

export type DeployReporter = (report: DeployReport) => Promise<void>;

export interface DeployOutcome {
  state: DeploymentState; // final state reached: verified, waiting_window, rolled_back, failed, installed
  /** When waiting for a change window: when the next one opens. */
  nextWindowAt?: string;
  /** For failed / rolled_back: the reason and detail also sent in the last report. */
  reason?: string;
  detail?: Record<string, unknown>;
  /** Only for a dry run (src/agent/dry-run-target.ts): what a real deploy would do (nothing live was touched). */
  dryRun?: DryRunPlan;
}

export interface DryRunPlan {
  ok: boolean;
  /** The validation problem, when the bundle would be refused. */
  validation?: { check: string; message: string };
  /** Any other step that would fail before the config test (render, write, config), and why. */
  failure?: { step: string; message: string };
  /** Where outputs were rendered (removed afterwards unless kept). */
  outputDir?: string;
  outputs: Array<{
    path: string;
    stagedPath: string;
    format: string;
    mode: string;
    owner?: string;
    group?: string;
    bytes: number;
    /** False when the live files already hold this version (a real deploy would not rewrite them). */
    wouldWrite: boolean;
  }>;
  configTest?: {
    command: string;
    ok: boolean;
    exitCode: number | null;
    stderrTail: string;
    timedOut: boolean;
  };
  /** The reload a real deploy would run: now, or when the change window opens. */
  reload?: { command: string; at: 'now' | string; windowOverridden?: boolean };
  verify?: { host: string; port: number; sni?: string };
}
