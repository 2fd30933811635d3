import { emailNotifier } from './email.ts';
import { NotifierRegistry } from './notifier.ts';
import { slackNotifier } from './slack.ts';
import { webhookNotifier } from './webhook.ts';

/** The channels certfleet ships, registered explicitly; a new channel is one file plus one line here. */
export function registerBuiltinNotifiers(registry: NotifierRegistry): NotifierRegistry {
  return registry
    .register('webhook', webhookNotifier)
    .register('slack', slackNotifier)
    .register('email', emailNotifier);
}

export function createNotifierRegistry(): NotifierRegistry {
  return registerBuiltinNotifiers(new NotifierRegistry());
}
