/** Step `creating`: POST /{dest-waba}/phone_numbers with migrate_phone_number=true. */
import { fromPromise } from 'xstate';
import type { CreateInput, CreateOutput } from '../../machines/migration.js';
import { isGraphApiError } from '../graph/errors.js';
import { findNumber, step, withDeps, type DepsSource } from './shared.js';
import type { StepDeps } from './deps.js';

export const createActor = (source: DepsSource<StepDeps>) =>
  fromPromise<CreateOutput, CreateInput>(withDeps(source, (deps) => ({ input: { input, intent } }) =>
    step(async () => {
      if (deps.mustReconcile(intent)) {
        // The earlier POST may have been applied: adopt the number instead of creating it twice.
        const found = findNumber(await deps.client.listPhoneNumbers(input.destWabaId), input);
        if (found) return { phoneNumberId: found.id, adopted: true };
      }
      await deps.durable();
      try {
        const id = await deps.client.createPhoneNumber(input.destWabaId, {
          cc: input.cc,
          phone_number: input.nationalNumber,
          migrate_phone_number: true,
          // Meta's spec marks verified_name required; the migration guide omits it. Sent only when
          // the operator gave one (docs/spec-divergences.md).
          ...(input.verifiedName ? { verified_name: input.verifiedName } : {}),
        });
        return { phoneNumberId: id, adopted: false };
      } catch (e) {
        // Refused because the number is already there (an earlier attempt landed late): adopt it.
        if (isGraphApiError(e) && !e.transient && e.code === 100) {
          const found = findNumber(await deps.client.listPhoneNumbers(input.destWabaId), input);
          if (found) return { phoneNumberId: found.id, adopted: true };
        }
        throw e;
      }
    }),
  ));
