/**
 * Step `carrying_settings` (On-Premises path), two optional parts:
 * - `--carry-webhook`: the number's Cloud webhook override, `POST /{phone-number-id}`
 *   webhook_configuration {override_callback_uri, verify_token}. Setting the same URL twice is
 *   harmless, and it is read back first so a resumed run sends nothing when it is already in force.
 * - `--carry-settings`: the On-Premises `show_security_notifications` and
 *   `notify_user_change_number`, in one `POST /{phone-number-id}` whatsapp_business_api_data.
 *   Meta offers no read-back of these, so the intent is the report line (`applied: false` until
 *   Meta answered); a resumed run sends the same values again, which is harmless.
 * A part already applied (its report line says so) is not sent again.
 */
import { fromPromise } from 'xstate';
import { API_DATA_SETTINGS, type CarryInput } from '../../machines/migration.js';
import type { CarryLine } from '../../machines/types.js';
import { isGraphApiError } from '../graph/errors.js';
import { redactUrl } from '../onprem/settings.js';
import { permanent } from './onprem-shared.js';
import { step, withDeps, type DepsSource } from './shared.js';
import type { StepDeps } from './deps.js';

const usable = (u: string | null | undefined) => (u && !u.includes('[redacted]') ? u : null);

export const carrySettingsActor = (source: DepsSource<StepDeps>) =>
  fromPromise<{ carryOver: CarryLine[] }, CarryInput>(withDeps(source, (deps) => ({ input }) =>
    step(async () => {
      let carryOver = input.carryOver;
      const waba = input.input.destWabaId;
      const webhookDone = carryOver.some((l) => l.setting === 'webhooks.url' && l.applied);
      if (input.input.carryWebhook && !webhookDone) {
        const stored = carryOver.find((l) => l.setting === 'webhooks.url');
        const url =
          deps.secrets.webhookUrl ?? usable(input.input.carryWebhook?.url) ?? usable(stored ? (JSON.parse(stored.value) as string) : null);
        if (!url)
          throw permanent(
            'the webhook URL to carry is not known in this run: it holds a secret that is never stored (or the On-Premises client had none). Set WABA_WEBHOOK_URL to the full URL (or pass --carry-webhook <url>) and resume.',
          );
        const current = await deps.client.getWebhookOverride(input.phoneNumberId);
        if (current !== url) {
          await deps.durable();
          try {
            await deps.client.setWebhookConfiguration(input.phoneNumberId, {
              override_callback_uri: url,
              ...(deps.secrets.webhookVerifyToken ? { verify_token: deps.secrets.webhookVerifyToken } : {}),
            });
          } catch (e) {
            if (isGraphApiError(e) && e.code === 100 && !e.transient)
              throw permanent(
                `Meta refused the webhook override (${e.message}): an app must be subscribed to WABA ${waba} before a number's callback can be overridden (POST /${waba}/subscribed_apps), and the URL must be https. Fix it, then resume.`,
              );
            throw e;
          }
        }
        const line: CarryLine = {
          setting: 'webhooks.url',
          value: JSON.stringify(redactUrl(url)),
          cloud: stored?.cloud ?? 'the number’s webhook override (webhook_configuration.override_callback_uri)',
          applied: true,
        };
        carryOver = stored ? carryOver.map((l) => (l === stored ? { ...l, applied: true } : l)) : [...carryOver, line];
      }
      if (input.input.carrySettings) {
        const data: Record<string, boolean> = {};
        for (const l of carryOver) {
          if (!(API_DATA_SETTINGS as readonly string[]).includes(l.setting) || l.applied) continue;
          const v: unknown = JSON.parse(l.value);
          if (typeof v === 'boolean') data[l.setting] = v;
        }
        if (Object.keys(data).length) {
          await deps.durable();
          try {
            await deps.client.setBusinessApiData(input.phoneNumberId, data);
          } catch (e) {
            if (isGraphApiError(e) && e.code === 100 && !e.transient)
              throw permanent(`Meta refused whatsapp_business_api_data ${JSON.stringify(data)} (${e.message}): the number is already on the Cloud API; set these two settings by hand (POST /${input.phoneNumberId} with whatsapp_business_api_data), or cancel this migration.`);
            throw e;
          }
          carryOver = carryOver.map((l) => (l.setting in data ? { ...l, applied: true } : l));
        }
      }
      return { carryOver };
    }),
  ));
