export * from './alert.ts';
export * from './notifier.ts';
export * from './builtin-notifiers.ts';
export * from './webhook.ts';
export * from './slack.ts';
export * from './email.ts';
export * from './conditions.ts';
export * from './alert-manager.ts';
export { redactUrl } from './redact.ts';
