export * from './renewal-policy.ts';
export * from './rate-limit-budget.ts';
export * from './registered-domain.ts';
export * from './plan.ts';
export { formatInstant, formatRelative, formatSpan } from './time-format.ts';
