import { InvalidArgumentError, type Command } from 'commander';
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

/** A commander option parser for whole numbers ≥ 1; anything else is a usage error (exit 2) naming the value. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    throw new InvalidArgumentError(`"${value}" is not a whole number of at least 1`);
  return n;
}
