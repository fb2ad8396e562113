/** Step `registering`: POST /{phone-number-id}/register {messaging_product, pin}. Meta allows 10
 *  calls per number per 72 h; the machine counts them and gates the last ones. The PIN comes from
 *  the runner's memory and is never stored. */
import { fromPromise } from 'xstate';
import type { AckOutput, StepInput } from '../../machines/migration.js';
import { needsInput, step, withDeps, type DepsSource } from './shared.js';
import type { StepDeps } from './deps.js';

export const registerActor = (source: DepsSource<StepDeps>) =>
  fromPromise<AckOutput, StepInput>(withDeps(source, (deps) => ({ input }) =>
    step(async () => {
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
