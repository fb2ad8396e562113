/** Step `registering`: POST /{phone-number-id}/register {messaging_product, pin}. Meta allows 10
 *  calls per number per 72 h; the machine counts them and gates the last ones. The PIN comes from
 *  the runner's memory and is never stored. On the On-Premises path the request also carries the
 *  client's backup {data, password}, from memory too (a new backup when this run has none). */
import { fromPromise } from 'xstate';
import type { AckOutput, StepInput } from '../../machines/migration.js';
import { META } from '../../machines/types.js';
import { isGraphApiError } from '../graph/errors.js';
import { ensureBackup } from './onprem-shared.js';
import { needsInput, step, withDeps, type DepsSource } from './shared.js';
import type { StepDeps } from './deps.js';

export const registerActor = (source: DepsSource<StepDeps>) =>
  fromPromise<AckOutput, StepInput>(withDeps(source, (deps) => ({ input }) =>
    step(async () => {
      if (input.onprem) return registerOnPrem(deps, input);
      if (deps.mustReconcile(input.intent)) {
        // Never spend a register call on a number that is already connected.
        const n = await deps.client.getPhoneNumber(input.phoneNumberId);
        if (n.status?.toUpperCase() === 'CONNECTED') return { reconciled: true };
      }
      const pin = deps.secrets.pin;
      if (!pin) throw needsInput('pin', 'the register PIN is needed: set WABA_REGISTER_PIN, use --pin-file, or enter it at the prompt');
      await deps.durable();
      await deps.client.register(input.phoneNumberId, pin);
      return { reconciled: false };
    }),
  ));

async function registerOnPrem(deps: StepDeps, input: StepInput): Promise<AckOutput> {
  if (deps.mustReconcile(input.intent)) {
    // An On-Premises number is CONNECTED before it moves: only platform_type tells it moved.
    const n = await deps.client.getPhoneNumberPlatform(input.phoneNumberId);
    if (n.platform_type?.toUpperCase() === 'CLOUD_API') return { reconciled: true };
  }
  const pin = deps.secrets.pin;
  if (!pin) throw needsInput('pin', 'the number’s current two-step PIN is needed: set WABA_REGISTER_PIN, use --pin-file, or enter it at the prompt');
  const backup = await ensureBackup(deps);
  await deps.durable();
  try {
    await deps.client.registerWithBackup(input.phoneNumberId, pin, backup);
  } catch (e) {
    // A refused PIN leaves the client down: its backup is of no more use.
    if (isGraphApiError(e) && e.code === META.PIN_MISMATCH) deps.secrets.backupData = undefined;
    throw e;
  }
  deps.secrets.backupData = undefined;
  return { reconciled: false };
}
