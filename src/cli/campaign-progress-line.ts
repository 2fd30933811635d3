/**
 * The progress of an emergency campaign as one line of text: a bar (verified + failed of all deployments) and the
 * counts per stage. On a terminal the line is redrawn in place; elsewhere (logs, CI) a new line is printed only
 * when the counts change, so the output stays readable.
 */
import type { CampaignProgress } from '../hub/emergency/campaign-progress.ts';

const WIDTH = 24;

export function progressLine(p: CampaignProgress, state: string): string {
  const total = p.deployments || p.certificates;
  const doneCount = p.deployments ? p.verified + p.failed : p.issued;
  const filled = total ? Math.round((doneCount / total) * WIDTH) : WIDTH;
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}]`;
  const failing = p.issueFailing ? ` (issuing failed for ${p.issueFailing}, retrying)` : '';
  return (
    `${bar} issued ${p.issued}/${p.certificates}${failing} · delivered ${p.delivered}/${p.deployments} · ` +
    `reloaded ${p.reloaded}/${p.deployments} · verified ${p.verified}/${p.deployments} · failed ${p.failed}` +
    (state === 'running' ? '' : ` · ${state}`)
  );
}

/** Writes progress lines: redrawn in place on a TTY, else one line per change. */
export class ProgressPrinter {
  private last = '';

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {}

  show(line: string): void {
    if (line === this.last) return;
    this.last = line;
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${line}`);
    else this.out.write(`${line}\n`);
  }

  /** Ends the redrawn line (a TTY needs the newline the redraws left out). */
  end(): void {
    if (this.out.isTTY && this.last) this.out.write('\n');
  }
}
