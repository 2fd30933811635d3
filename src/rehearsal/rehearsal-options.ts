/** The knobs of a rehearsal, parsed and checked in one place (the CLI and tests both build options here). */
import { CertfleetError } from '../core/errors.ts';

export const FAULT_KINDS = [
  'ca-down',
  'rate-limit',
  'dns',
  'reload-fails',
  'agent-offline',
  'hub-restart',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface RehearsalOptions {
  days: number;
  endpoints: number;
  /** Certificate lifetime in milliseconds (whole hours). */
  lifetimeMs: number;
  faults: FaultKind[];
  seed: number;
  /** Simulated start (default 2027-01-04T00:00:00Z, a Monday: runs are reproducible, not tied to today). */
  start?: Date;
  /** How often the hub's planner loop runs (the hub's default: 60 s). */
  plannerIntervalMs?: number;
  /** How long the simulated operator takes to act on a deployment alert (retry the deploy). */
  operatorResponseMs?: number;
  /** Told at the start of each simulated day (a progress line). */
  onProgress?: (day: number) => void;
}

const HOUR = 3_600_000;

const usage = (message: string, hint: string) => new CertfleetError('USAGE', message, hint);

/** `47d`, `6d`, `160h` → milliseconds; a positive whole number of days or hours. */
export function parseLifetime(text: string): number {
  const m = /^(\d+)([dh])$/.exec(text.trim());
  const n = m ? Number(m[1]) : NaN;
  if (!m || !(n > 0))
    throw usage(
      `--lifetime "${text}" is not a lifetime`,
      'give a positive number of days or hours, e.g. --lifetime 47d, 6d or 160h',
    );
  const ms = n * (m[2] === 'd' ? 24 * HOUR : HOUR);
  if (ms < 24 * HOUR || ms > 398 * 24 * HOUR)
    throw usage(
      `--lifetime ${text} is outside 1 day to 398 days`,
      'publicly trusted certificates live between a few days and 398 days; pick a lifetime in that range',
    );
  return ms;
}

/** A comma-separated list of fault kinds; `all` names every kind. */
export function parseFaults(text: string | undefined): FaultKind[] {
  if (!text) return [];
  if (text.trim() === 'all') return [...FAULT_KINDS];
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(FAULT_KINDS as readonly string[]).includes(n));
  if (unknown.length)
    throw usage(
      `unknown fault ${unknown.map((u) => `"${u}"`).join(', ')}`,
      `faults are: ${FAULT_KINDS.join(', ')} (or all)`,
    );
  return [...new Set(names)] as FaultKind[];
}

function positiveInt(name: string, text: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !(n >= 1 && n <= max))
    throw usage(
      `--${name} "${text}" must be a whole number from 1 to ${max}`,
      `e.g. --${name} ${Math.min(max, 30)}`,
    );
  return n;
}

/** Options from the command line's strings. */
export function rehearsalOptionsFrom(raw: {
  days: string;
  endpoints: string;
  lifetime: string;
  faults?: string;
  seed?: string;
}): RehearsalOptions {
  const seed = raw.seed === undefined ? 1 : Number(raw.seed);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw usage(`--seed "${raw.seed}" must be a whole number`, 'e.g. --seed 42');
  return {
    days: positiveInt('days', raw.days, 3650),
    endpoints: positiveInt('endpoints', raw.endpoints, 100_000),
    lifetimeMs: parseLifetime(raw.lifetime),
    faults: parseFaults(raw.faults),
    seed,
  };
}
