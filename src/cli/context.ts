import type { Command } from 'commander';
import { HubClient, resolveClientOptions } from './client.ts';

export interface GlobalFlags {
  hub?: string;
  token?: string;
  caFile?: string;
  config?: string;
  json?: boolean;
  debug?: boolean;
}

export function globalFlags(cmd: Command): GlobalFlags {
  return cmd.optsWithGlobals() as GlobalFlags;
}

export function clientFor(cmd: Command): HubClient {
  return new HubClient(resolveClientOptions(globalFlags(cmd)));
}
