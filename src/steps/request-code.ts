/**
 * Step `requesting_code`: POST /{phone-number-id}/request_code {code_method, language}.
 *
 * At most once, with resend: every request invalidates the code sent before it, and the person
 * may already be reading that code. So a request whose answer was lost (timeout, reset) or that
 * may have been in flight when a process died is never re-sent on our own: the migration goes to
 * `awaiting_code` marked `uncertain` ("a code may have been sent; if none arrives, resend-code").
 * Only a request Meta answered with an error (nothing was sent) is retried.
 */
import { fromPromise } from 'xstate';
import type { RequestCodeInput, RequestCodeOutput } from '../../machines/migration.js';
import { isGraphApiError } from '../graph/errors.js';
import { step, withDeps, type DepsSource } from './shared.js';
import type { StepDeps } from './deps.js';

export const requestCodeActor = (source: DepsSource<StepDeps>) =>
  fromPromise<RequestCodeOutput, RequestCodeInput>(withDeps(source, (deps) => ({ input }) =>
    step(async () => {
      if (deps.mustReconcile(input.intent)) {
        // Requesting a code for a verified number fails with 136024: look first.
        const n = await deps.client.getPhoneNumber(input.phoneNumberId);
        if (n.code_verification_status?.toUpperCase() === 'VERIFIED') return { at: Date.now(), alreadyVerified: true };
        // The previous process may have sent it: do not invalidate a code that may be arriving.
        if (deps.wasInFlight(input.intent)) return { at: Date.now(), alreadyVerified: false, uncertain: true };
      }
      await deps.durable();
      try {
        await deps.client.requestCode(input.phoneNumberId, { code_method: input.method, language: input.language });
      } catch (e) {
        // No answer: Meta may have sent the code. Wait for the person instead of resending.
        if (isGraphApiError(e) && e.kind === 'network') return { at: Date.now(), alreadyVerified: false, uncertain: true };
        throw e;
      }
      return { at: Date.now(), alreadyVerified: false };
    }),
  ));
