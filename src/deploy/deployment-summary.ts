import type { Deployment } from '../core/types.ts';

const MAX = 100;

/**
 * Why a deployment is in its state, in one line, for status tables and the dashboard: `config_test exited 1:
 * nginx: [emerg] …` (the step, the exit code and the last stderr line), the probes' words for `diverged`, when
 * the window opens for `waiting_window`. Null when the state says it all. The doctor gives the whole story.
 */
export function deploymentSummary(d: Pick<Deployment, 'state' | 'reason' | 'detail'>): string | null {
  const detail = (d.detail ?? {}) as {
    step?: string;
    exitCode?: number | null;
    stderrTail?: string;
    message?: string;
    nextWindowAt?: string;
  };
  let text: string | null = null;
  if (d.state === 'failed' || d.state === 'rolled_back') {
    const step = detail.step ?? d.reason ?? 'unknown step';
    const lastLine = (detail.stderrTail ?? '').trimEnd().split('\n').at(-1)?.trim();
    const exit = typeof detail.exitCode === 'number' ? ` exited ${detail.exitCode}` : '';
    text = `${step}${exit}${lastLine ? `: ${lastLine}` : detail.message ? `: ${detail.message}` : ''}`;
  } else if (d.state === 'waiting_window') {
    text = detail.nextWindowAt ? `window opens ${detail.nextWindowAt}` : (d.reason ?? null);
  } else text = d.reason ?? null;
  return text && text.length > MAX ? `${text.slice(0, MAX - 1)}…` : text;
}
