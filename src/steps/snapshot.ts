/** Step `snapshotting` (On-Premises path): GET /v1/settings/application on the On-Premises client.
 *  Stored with secrets redacted; the full webhook URL stays in this run's memory for carrying. */
import { fromPromise } from 'xstate';
import type { OnPremStepInput } from '../../machines/migration.js';
import type { SnapshotOutput } from '../../machines/types.js';
import { carryOverReport, redactSettings } from '../onprem/settings.js';
import { onpremClient } from './onprem-shared.js';
import { step, withDeps, type DepsSource } from './shared.js';
import type { StepDeps } from './deps.js';

export const snapshotActor = (source: DepsSource<StepDeps>) =>
  fromPromise<SnapshotOutput, OnPremStepInput>(withDeps(source, (deps) => ({ input }) =>
    step(async () => {
      const settings = await onpremClient(deps).getApplicationSettings();
      const url = (settings.webhooks as { url?: unknown } | undefined)?.url;
      if (input.input.carryWebhook && input.input.carryWebhook.url === null && typeof url === 'string' && url) deps.secrets.webhookUrl ??= url;
      const redacted = redactSettings(settings);
      return { settings: redacted, carryOver: carryOverReport(redacted, { webhook: false }) };
    }),
  ));
