/**
 * The On-Premises application settings as waba-migrate keeps them (secrets redacted) and the
 * carry-over report: for each setting, its Cloud API equivalent or why there is none. Pure.
 */

import type { CarryLine } from '../../machines/types.js';

export type { CarryLine };

/** Replaces every query value of a URL with `[redacted]` (a webhook URL may carry `?auth=<secret>`). */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.username || u.password) {
      u.username = '[redacted]';
      u.password = '';
    }
    for (const k of [...u.searchParams.keys()]) u.searchParams.set(k, '[redacted]');
    return u.toString().replace(/%5Bredacted%5D/g, '[redacted]');
  } catch {
    return raw ? '[redacted]' : raw;
  }
}

/** A copy of the settings safe to store: the webhook URL's query values redacted. */
export function redactSettings(settings: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone(settings);
  const w = out.webhooks as Record<string, unknown> | undefined;
  if (w && typeof w.url === 'string') w.url = redactUrl(w.url);
  return out;
}

const NONE_RETRY = 'none: Meta retries Cloud webhooks itself for up to 7 days';
/** Where each On-Premises setting goes on the Cloud API (Meta's migration guide and reference). */
const CLOUD: Record<string, string> = {
  'webhooks.url': 'the number’s webhook override: POST /{phone-number-id} webhook_configuration.override_callback_uri (else the app’s callback URL)',
  'webhooks.max_concurrent_requests': 'none: Meta decides how many webhook requests it sends at once',
  'webhooks.message.sent': 'none: Cloud API always sends sent/delivered/read statuses to the subscribed app',
  'webhooks.message.delivered': 'none: Cloud API always sends sent/delivered/read statuses to the subscribed app',
  'webhooks.message.read': 'none: Cloud API always sends sent/delivered/read statuses to the subscribed app',
  callback_persist: NONE_RETRY,
  callback_backoff_delay_ms: NONE_RETRY,
  max_callback_backoff_delay_ms: NONE_RETRY,
  'media.auto_download': 'none: media is not auto-downloaded on Cloud; fetch it with GET /{media-id} when a webhook names it',
  'garbagecollector_enable.messages': 'none: Meta stores Cloud API messages; there is no local database to collect',
  'garbagecollector_enable.media': 'none: Meta stores Cloud API media; there is no local database to collect',
  db_garbagecollector_enable: 'none: there is no local database on Cloud',
  pass_through: 'none: there is no local database on Cloud',
  heartbeat_interval: 'none: Meta runs the Cloud API nodes (no multiconnect setup)',
  unhealthy_interval: 'none: Meta runs the Cloud API nodes (no multiconnect setup)',
  axolotl_context_striping_disabled: 'none: no local database connections on Cloud',
  verbose_logging: 'none: no coreapp logs on Cloud',
  log_level: 'none: no coreapp logs on Cloud',
  skip_referral_media_download: 'none: media is not auto-downloaded on Cloud',
  webhook_payload_conversation_pricingmodel_disabled: 'none: deprecated; Cloud status webhooks carry pricing',
  show_security_notifications: 'POST /{phone-number-id} whatsapp_business_api_data.show_security_notifications (applied with --carry-settings)',
  notify_user_change_number: 'POST /{phone-number-id} whatsapp_business_api_data.notify_user_change_number (applied with --carry-settings)',
  wa_id: 'unchanged: the number keeps its phone_number_id on the Cloud API',
};

/** Flattens nested objects to dotted names; arrays are values. */
function flatten(o: Record<string, unknown>, prefix = ''): [string, unknown][] {
  return Object.entries(o).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? flatten(v as Record<string, unknown>, `${prefix}${k}.`) : [[`${prefix}${k}`, v] as [string, unknown]],
  );
}

/** One line per setting of the (already redacted) snapshot, sorted by name. */
export function carryOverReport(redacted: Record<string, unknown>, applied: { webhook: boolean }): CarryLine[] {
  return flatten(redacted)
    .map(([setting, v]) => ({
      setting,
      value: JSON.stringify(v),
      cloud: CLOUD[setting] ?? 'none: no documented Cloud API equivalent',
      applied: setting === 'webhooks.url' && applied.webhook,
    }))
    .sort((a, b) => a.setting.localeCompare(b.setting));
}
