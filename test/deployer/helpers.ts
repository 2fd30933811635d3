import { servedFingerprint as servedBy } from '../helpers/nginx.ts';
import type { DeployReport, DeployRequest } from '../../src/deploy/deploy-contract.ts';
import type { Bundle, Subscription } from '../../src/core/types.ts';
import { fingerprintOf } from '../../src/pki/inspect.ts';

export const NAMES = ['www.deploy.test'];

export function requestFor(
  bundle: Bundle,
  subscription: DeployRequest['subscription'],
  extra: Partial<DeployRequest> = {},
): DeployRequest {
  const fingerprint = fingerprintOf(bundle.certPem);
  return {
    certificateName: 'web',
    sans: NAMES,
    versionId: `ver_${fingerprint.slice(0, 12)}`,
    fingerprint,
    bundle,
    subscription,
    ...extra,
  };
}

export function subscriptionOf(
  s: Partial<Subscription> & Pick<Subscription, 'outputs'>,
): DeployRequest['subscription'] {
  return { id: 'sub_test', ...s };
}

/** A reporter that records every report. */
export function recorder(): {
  reports: DeployReport[];
  report: (r: DeployReport) => Promise<void>;
  states: () => string[];
} {
  const reports: DeployReport[] = [];
  return {
    reports,
    report: async (r) => {
      reports.push(r);
    },
    states: () => reports.map((r) => r.state),
  };
}

/** SHA-256 of the leaf a TLS server on 127.0.0.1:port serves for `servername` (default: the test PKI's name). */
export const servedFingerprint = (port: number, servername = NAMES[0]): Promise<string> =>
  servedBy(port, servername);

export const fullchainOf = (b: Bundle) => b.certPem + b.chainPems.join('');
