/** Step `confirming`: reads the number and the destination WABA; completed when the number is
 *  listed there and CONNECTED. Warns (does not fail) when no app receives the WABA's webhooks. */
import { fromPromise } from 'xstate';
import type { ConfirmInput } from '../../machines/migration.js';
import type { ConfirmOutput } from '../../machines/types.js';
import { isGraphApiError } from '../graph/errors.js';
import { step, withDeps, type DepsSource } from './shared.js';
import type { StepDeps } from './deps.js';

export const confirmActor = (source: DepsSource<StepDeps>) =>
  fromPromise<ConfirmOutput, ConfirmInput>(withDeps(source, (deps) => ({ input }) =>
    step(async () => {
      const { client } = deps;
      if (input.input.from === 'onprem') return confirmOnPrem(deps, input);
      const [n, listed, apps] = await Promise.all([
        client.getPhoneNumber(input.phoneNumberId),
        client.wabaListsNumber(input.input.destWabaId, input.phoneNumberId),
        client.countSubscribedApps(input.input.destWabaId).catch((e: unknown) => {
          if (isGraphApiError(e) && !e.transient) return null;
          throw e;
        }),
      ]);
      const status = n.status ?? null;
      const connected = status?.toUpperCase() === 'CONNECTED';
      if (!listed || !connected) {
        // Meta can take a moment to show the registration: a temporary condition, retried.
        throw {
          kind: 'bad_response',
          transient: true,
          message: !listed
            ? `number ${input.phoneNumberId} is not yet listed in WABA ${input.input.destWabaId}`
            : `number ${input.phoneNumberId} status is ${status ?? 'unknown'}, not CONNECTED yet`,
        };
      }
      const warnings = [
        `The number has a new phone_number_id ${input.phoneNumberId}: update every integration that used the old id.`,
      ];
      if (apps === 0)
        warnings.push(
          `No app is subscribed to WABA ${input.input.destWabaId} (GET /${input.input.destWabaId}/subscribed_apps is empty): webhooks for this number would be silently missed. Subscribe your app with POST /${input.input.destWabaId}/subscribed_apps.`,
        );
      if (apps === null) warnings.push(`Could not read subscribed_apps of WABA ${input.input.destWabaId}: check that your app receives its webhooks.`);
      return {
        connected,
        listed,
        status,
        displayPhoneNumber: n.display_phone_number ?? null,
        verifiedName: n.verified_name ?? null,
        qualityRating: n.quality_rating ?? null,
        warnings,
      };
    }),
  ));

/** On-Premises path: the number kept its id and WABA; done when it is CLOUD_API and CONNECTED. */
async function confirmOnPrem(deps: StepDeps, input: ConfirmInput): Promise<ConfirmOutput> {
  const n = await deps.client.getPhoneNumberPlatform(input.phoneNumberId);
  const status = n.status ?? null;
  const cloud = n.platform_type?.toUpperCase() === 'CLOUD_API';
  if (!cloud || status?.toUpperCase() !== 'CONNECTED')
    throw { kind: 'bad_response', transient: true, message: `number ${input.phoneNumberId} is ${n.platform_type ?? '?'} / ${status ?? '?'}, not CLOUD_API / CONNECTED yet` };
  return {
    connected: true,
    listed: true,
    status,
    displayPhoneNumber: n.display_phone_number ?? null,
    verifiedName: n.verified_name ?? null,
    qualityRating: n.quality_rating ?? null,
    warnings: [
      `The number kept its phone_number_id ${input.phoneNumberId}: point your integration at graph.facebook.com with it. The On-Premises client is now disconnected; shut it down.`,
    ],
  };
}
