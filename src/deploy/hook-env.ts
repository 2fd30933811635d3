import { dirname } from 'node:path';

/** What a deploy hook is told, certbot-compatible plus certfleet's own names. */
export interface HookContext {
  certificateName: string;
  sans: string[];
  fingerprint: string;
  versionId: string;
  subscriptionId: string;
  outputPaths: string[];
  /** The subscription's certbot lineage directory, when it has one. */
  lineage?: string;
}

/**
 * certbot's deploy-hook variables (RENEWED_LINEAGE = the certbot lineage directory, else the directory of the
 * first output; RENEWED_DOMAINS = the names, space-separated) plus CERTFLEET_*, layered over `base` (the
 * environment commands run with).
 */
export function hookEnv(ctx: HookContext, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    RENEWED_LINEAGE: ctx.lineage ?? (ctx.outputPaths.length ? dirname(ctx.outputPaths[0]) : ''),
    RENEWED_DOMAINS: ctx.sans.join(' '),
    CERTFLEET_CERT_NAME: ctx.certificateName,
    CERTFLEET_FINGERPRINT: ctx.fingerprint,
    CERTFLEET_VERSION_ID: ctx.versionId,
    CERTFLEET_SUBSCRIPTION_ID: ctx.subscriptionId,
    CERTFLEET_OUTPUTS: ctx.outputPaths.join(' '),
  };
}
