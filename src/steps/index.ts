/** The real actors, keyed by the names the machine declares. */
import { checksActor } from './checks.js';
import { confirmActor } from './confirm.js';
import { createActor } from './create.js';
import type { StepDeps } from './deps.js';
import { registerActor } from './register.js';
import { requestCodeActor } from './request-code.js';
import { verifyCodeActor } from './verify-code.js';
import { snapshotActor } from './snapshot.js';
import { backupActor } from './backup.js';
import { carrySettingsActor } from './carry-settings.js';

export type { StepDeps, Secrets } from './deps.js';

/** `deps` is either the dependencies or a function finding them for an actor system. */
export function buildActors(deps: StepDeps | ((system: object) => StepDeps)) {
  return {
    runChecks: checksActor(deps),
    createNumber: createActor(deps),
    requestCode: requestCodeActor(deps),
    verifyCode: verifyCodeActor(deps),
    register: registerActor(deps),
    confirm: confirmActor(deps),
    snapshot: snapshotActor(deps),
    backup: backupActor(deps),
    carrySettings: carrySettingsActor(deps),
  };
}
