/** Step `backing_up` (On-Premises path): POST /v1/settings/backup {password}. The blob and the
 *  password stay in the runner's memory; a resumed run without them makes a new backup. */
import { fromPromise } from 'xstate';
import type { AckOutput, OnPremStepInput } from '../../machines/migration.js';
import { ensureBackup } from './onprem-shared.js';
import { step, withDeps, type DepsSource } from './shared.js';
import type { StepDeps } from './deps.js';

export const backupActor = (source: DepsSource<StepDeps>) =>
  fromPromise<AckOutput, OnPremStepInput>(withDeps(source, (deps) => () =>
    step(async () => {
      await ensureBackup(deps);
      return { reconciled: false };
    }),
  ));
