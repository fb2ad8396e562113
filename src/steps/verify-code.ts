/** Step `verifying_code`: POST /{phone-number-id}/verify_code {code}. The code is read from the
 *  runner's memory, never from the machine, so it cannot reach a snapshot. */
import { fromPromise } from 'xstate';
import type { AckOutput, StepInput } from '../../machines/migration.js';
import { META } from '../../machines/types.js';
import { isGraphApiError } from '../graph/errors.js';
import { needsInput, step, withDeps, type DepsSource } from './shared.js';
import type { StepDeps } from './deps.js';

export const verifyCodeActor = (source: DepsSource<StepDeps>) =>
  fromPromise<AckOutput, StepInput>(withDeps(source, (deps) => ({ input }) =>
    step(async () => {
      if (deps.mustReconcile(input.intent)) {
        const n = await deps.client.getPhoneNumber(input.phoneNumberId);
        if (n.code_verification_status?.toUpperCase() === 'VERIFIED') {
          deps.secrets.code = undefined;
          return { reconciled: true };
        }
      }
      const code = deps.secrets.code;
      if (!code) throw needsInput('code', 'the verification code is needed: it is never stored, so enter it again');
      await deps.durable();
      try {
        await deps.client.verifyCode(input.phoneNumberId, code);
      } catch (e) {
        // A wrong or expired code is spent; a transient failure keeps it for the retry.
        if (isGraphApiError(e) && e.code === META.WRONG_CODE) deps.secrets.code = undefined;
        throw e;
      }
      deps.secrets.code = undefined;
      return { reconciled: false };
    }),
  ));
