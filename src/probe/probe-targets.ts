/**
 * Which targets prove what, and who probes them: shared by the hub (its own probes and the judgement) and the agent
 * (probes from the endpoint's side), so both name targets and pick a subscription's targets the same way.
 */
import type { Certificate, Endpoint, ProbeTarget, Subscription } from '../core/types.ts';
import type { ProbeResult } from './probe-result.ts';

/** Who probes a target: the hub (default), the endpoint's agent, or both. */
export const PROBE_FROM = ['hub', 'agent', 'both'] as const;
export type ProbeFrom = (typeof PROBE_FROM)[number];

/** Where a stored result was taken: `hub`, or `agent:<endpoint name>`. */
export const HUB_SOURCE = 'hub';
export const agentSource = (endpointName: string): string => `agent:${endpointName}`;

export const probeFromOf = (t: ProbeTarget): ProbeFrom => t.from ?? 'hub';
/** Whether the hub probes this target itself. */
export const hubProbes = (t: ProbeTarget): boolean => probeFromOf(t) !== 'agent';
/** Whether the endpoint's agent probes this target. */
export const agentProbes = (t: ProbeTarget): boolean => probeFromOf(t) !== 'hub';

/** The sources whose results count for this target of endpoint `endpointName`. */
export const sourcesFor = (t: ProbeTarget, endpointName: string): string[] => [
  ...(hubProbes(t) ? [HUB_SOURCE] : []),
  ...(agentProbes(t) ? [agentSource(endpointName)] : []),
];

/** `host:port[/sni][+starttls]`: identifies one target of an endpoint in stored results (whoever probes it). */
export function probeTargetKey(t: ProbeTarget): string {
  return `${t.host}:${t.port}${t.sni ? `/${t.sni}` : ''}${t.starttls ? `+${t.starttls}` : ''}`;
}

/** Whether DNS name `name` is covered by SAN `san` (one-label wildcards only, as browsers do). */
export function sanCovers(san: string, name: string): boolean {
  const a = san.toLowerCase();
  const b = name.toLowerCase().replace(/\.$/, '');
  if (a === b) return true;
  if (!a.startsWith('*.')) return false;
  const dot = b.indexOf('.');
  return dot > 0 && b.slice(dot + 1) === a.slice(2);
}

/**
 * The targets that prove a subscription: with one subscription on the endpoint, all its targets; with several,
 * the targets whose SNI (or host) the certificate covers, since one port cannot serve two certificates to the
 * same name. The subscription's own `verify` target always counts.
 */
export function targetsForSubscription(
  endpoint: Pick<Endpoint, 'probeTargets'>,
  sub: Pick<Subscription, 'verify'>,
  cert: Pick<Certificate, 'sans'>,
  subscriptionsOnEndpoint: number,
): ProbeTarget[] {
  const base =
    subscriptionsOnEndpoint <= 1
      ? endpoint.probeTargets
      : endpoint.probeTargets.filter((t) => cert.sans.some((s) => sanCovers(s, t.sni ?? t.host)));
  const out = [...base];
  if (sub.verify && !out.some((t) => probeTargetKey(t) === probeTargetKey(sub.verify!))) out.push(sub.verify);
  return out;
}

/** One probe result as stored and reported: the target's key and what was seen, flat and JSON-safe. */
export interface ProbeObservation {
  targetKey: string;
  at: string;
  ok: boolean;
  fingerprint?: string;
  /** The served leaf's serial number, hex. */
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  errorKind?: string;
  errorMessage?: string;
  tlsVersion?: string;
  handshakeMs?: number;
}

export function observationOf(target: ProbeTarget, r: ProbeResult): ProbeObservation {
  return {
    targetKey: probeTargetKey(target),
    at: r.at,
    ok: r.ok,
    ...(r.fingerprint ? { fingerprint: r.fingerprint } : {}),
    ...(r.serial ? { serial: r.serial } : {}),
    ...(r.notBefore ? { notBefore: r.notBefore } : {}),
    ...(r.notAfter ? { notAfter: r.notAfter } : {}),
    ...(r.error ? { errorKind: r.error.kind, errorMessage: r.error.message } : {}),
    ...(r.tlsVersion ? { tlsVersion: r.tlsVersion } : {}),
    ...(r.handshakeMs !== undefined ? { handshakeMs: r.handshakeMs } : {}),
  };
}
