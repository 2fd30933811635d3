import type { Cron } from 'croner';
import { CertfleetError } from '../core/errors.ts';
import type { ChangeWindow } from '../core/types.ts';
import { windowCron } from '../core/window-cron.ts';

/**
 * A change window opens at each start of `cron` (in `timezone`) and stays open for `durationMinutes`.
 * `now` is inside a window when the most recent start S satisfies S <= now < S + duration; since every window
 * lasts equally long, the most recent start is the only one that can still be open.
 */
export interface WindowState {
  open: boolean;
  /** When closed: the next start. */
  opensAt?: Date;
  /** When open: the end of the current window. */
  closesAt?: Date;
}

function cronOf(window: ChangeWindow): Cron {
  if (!(typeof window.durationMinutes === 'number' && window.durationMinutes > 0)) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `change window duration ${String(window.durationMinutes)} is not a positive number of minutes`,
      'set durationMinutes, e.g. 120',
    );
  }
  return windowCron(window);
}

/** Throws CertfleetError CONFIG_INVALID for a window that cannot be evaluated. */
export function checkWindow(window: ChangeWindow): void {
  cronOf(window);
}

export function windowState(window: ChangeWindow, now: Date): WindowState {
  const cron = cronOf(window);
  const durationMs = window.durationMinutes * 60_000;
  // previousRuns excludes a run in the reference's own instant; 1 ms later includes a start exactly at `now`.
  const [start] = cron.previousRuns(1, new Date(now.getTime() + 1));
  if (start && start.getTime() <= now.getTime() && now.getTime() < start.getTime() + durationMs) {
    return { open: true, closesAt: new Date(start.getTime() + durationMs) };
  }
  const next = cron.nextRun(now);
  return { open: false, ...(next ? { opensAt: next } : {}) };
}
