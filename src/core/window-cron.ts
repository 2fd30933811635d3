import { Cron } from 'croner';
import { CertfleetError } from './errors.ts';

/**
 * The one place a change window's cron expression and time zone are judged, with croner (the engine the agent
 * evaluates windows with): the hub's API and `apply` schemas and the agent's pipeline all ask here, so a window
 * the hub accepts is one every agent can evaluate.
 */
export interface WindowProblem {
  field: 'cron' | 'timezone';
  message: string;
}

const HINT =
  'use a five-field cron expression such as "0 2 * * 1-5" and an IANA time zone such as "Europe/Berlin"';

/** croner checks a time zone only when it computes a date, so every check computes one. */
function tryCron(pattern: string, timezone: string): string | undefined {
  try {
    new Cron(pattern, { timezone, paused: true }).nextRun(new Date(0));
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** What is wrong with the window's cron and time zone, per field; empty when croner can evaluate it. */
export function windowProblems(window: { cron: string; timezone: string }): WindowProblem[] {
  const problems: WindowProblem[] = [];
  const zone = tryCron('0 0 * * *', window.timezone);
  if (zone) problems.push({ field: 'timezone', message: `"${window.timezone}" is not an IANA time zone` });
  const cron = tryCron(window.cron, 'UTC');
  if (cron) {
    const why = cron.replace(/^CronPattern: /, '');
    problems.push({ field: 'cron', message: `"${window.cron}" is not a valid cron expression: ${why}` });
  }
  return problems;
}

/** The window's schedule; CertfleetError CONFIG_INVALID naming every problem when croner cannot evaluate it. */
export function windowCron(window: { cron: string; timezone: string }): Cron {
  const problems = windowProblems(window);
  if (problems.length) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `change window is not valid: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
      HINT,
    );
  }
  return new Cron(window.cron, { timezone: window.timezone, paused: true });
}
