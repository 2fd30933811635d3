import type { Bundle, DeploymentState, Subscription } from '../core/types.ts';

/**
 * The seam between the agent's subscriber (which talks to the hub) and its deployer (which touches the endpoint):
 * the subscriber hands over one version for one subscription; the deployer reports every transition through
 * `report`, which the subscriber forwards to the hub (and queues while the hub is unreachable).
 */
export interface DeployRequest {
  certificateName: string;
  /** The certificate's names, so the deployer can check the bundle covers them. */
  sans: string[];
  versionId: string;
  fingerprint: string;
  bundle: Bundle;
  subscription: Pick<Subscription, 'id' | 'outputs' | 'configTest' | 'reload' | 'window' | 'verify'>;
  /** Reload now even outside the change window (`--now`); the override is reported as an event. */
  overrideWindow?: boolean;
}

export interface DeployReport {
  state: DeploymentState;
  reason?: string;
  detail?: Record<string, unknown>;
  at: string;
}

export type DeployReporter = (report: DeployReport) => Promise<void>;

export interface DeployOutcome {
  state: DeploymentState; // final state reached: verified, waiting_window, rolled_back, failed, installed
  /** When waiting for a change window: when the next one opens. */
  nextWindowAt?: string;
}
