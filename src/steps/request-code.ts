/** Step `requesting_code`: POST /{phone-number-id}/request_code {code_method, language}. */
import { fromPromise } from 'xstate';
import type { RequestCodeInput, RequestCodeOutput } from '../../machines/migration.js';
import { step, withDeps, type DepsSource } from './shared.js';
import type { StepDeps } from './deps.js';

export const requestCodeActor = (source: DepsSource<StepDeps>) =>
  fromPromise<RequestCodeOutput, RequestCodeInput>(withDeps(source, (deps) => ({ input }) =>
    step(async () => {
      if (deps.mustReconcile(input.intent)) {
        // Requesting a code for a verified number fails with 136024: look first.
        const n = await deps.client.getPhoneNumber(input.phoneNumberId);
        if (n.code_verification_status?.toUpperCase() === 'VERIFIED') return { at: Date.now(), alreadyVerified: true };
      }
      await deps.durable();
      await deps.client.requestCode(input.phoneNumberId, { code_method: input.method, language: input.language });
      return { at: Date.now(), alreadyVerified: false };
    }),
  ));
