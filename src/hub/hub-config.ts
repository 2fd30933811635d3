import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { CertfleetError } from '../core/errors.ts';
import { formatZodError } from '../core/config-schema.ts';
import { agentHubConfigShape } from './agent-protocol/agent-config.ts';
import { acmeHubConfigShape } from './acme/acme-config.ts';
import { probesHubConfigShape } from './probe-service.ts';
import { alertsHubConfigShape } from './alert-service.ts';
import { apiHubConfigShape } from './api/failure-limiter.ts';
import { connectorsHubConfigShape } from './connector-service.ts';
import { backupHubConfigShape } from '../backup/backup-schedule.ts';

/**
 * The hub's own settings (`certfleet hub --hub-config hub.yaml`, env CERTFLEET_HUB_CONFIG): issuers, planner,
 * probes, alerts. Everything is optional: without a file the hub runs on its embedded defaults (internal CA only).
 * Each capability owns its section's schema; this file only assembles them.
 */
export const hubConfigSchema = z.strictObject({
  ...acmeHubConfigShape,
  ...agentHubConfigShape,
  ...probesHubConfigShape,
  ...alertsHubConfigShape,
  ...apiHubConfigShape,
  ...connectorsHubConfigShape,
  ...backupHubConfigShape,
});

export type HubConfig = z.output<typeof hubConfigSchema>;

export async function loadHubConfig(path: string | undefined): Promise<HubConfig> {
  if (!path) return hubConfigSchema.parse({});
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `cannot read hub config ${path}`,
      'check --hub-config / CERTFLEET_HUB_CONFIG',
    );
  }
  const doc = parseDocument(text);
  if (doc.errors.length) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `${path}: malformed YAML: ${doc.errors[0].message.split('\n')[0]}`,
      'fix the YAML syntax',
    );
  }
  const parsed = hubConfigSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `${path} is invalid:\n  ${formatZodError(parsed.error).join('\n  ')}`,
      'fix the file and start the hub again',
    );
  }
  return parsed.data;
}
