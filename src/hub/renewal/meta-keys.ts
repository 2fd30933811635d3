/** The store meta keys the renewal side writes, built in this one place. */

/** + the ACME directory URL: that directory's rate-limit budget (RateLimitBudget.toJSON). */
export const BUDGET_META_PREFIX = 'planner.budget.';
/** When the planner last finished a run (ISO time); alerts and metrics watch it. */
export const PLANNER_LAST_RUN_META = 'planner.last_run_at';
