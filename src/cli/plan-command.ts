import type { Command } from 'commander';
import type { PlanEntry } from '../hub/planner/index.ts';
import { clientFor, globalFlags } from './context.ts';
import { printJson } from './output.ts';

const date = (v: unknown) => (typeof v === 'string' ? new Date(v) : undefined);

/** Dates arrive as ISO strings; the table formatter wants Dates back. */
export function revivePlanEntry(e: any): PlanEntry {
  return {
    ...e,
    dueAt: date(e.dueAt)!,
    decision: { ...e.decision, dueAt: date(e.decision.dueAt)! },
    headroom: (e.headroom ?? []).map((h: any) => ({
      ...h,
      ...(h.nextFreeAt ? { nextFreeAt: date(h.nextFreeAt) } : {}),
    })),
    ...(e.deferral ? { deferral: { ...e.deferral, freesAt: date(e.deferral.freesAt)! } } : {}),
  };
}

export function registerPlanCommand(program: Command): void {
  program
    .command('plan')
    .description('show the upcoming renewal calendar with reasons and rate-limit budget headroom')
    .action(async (_opts, cmd: Command) => {
      const plan = await clientFor(cmd).get<{ now: string; entries: unknown[] }>('/api/v1/plan');
      if (globalFlags(cmd).json) return printJson(plan);
      const { formatPlanTable } = await import('../hub/planner/index.ts');
      process.stdout.write(formatPlanTable(plan.entries.map(revivePlanEntry), new Date(plan.now)));
    });
}
