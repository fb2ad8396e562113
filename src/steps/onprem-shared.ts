/** Helpers of the On-Premises steps (issue 12). */
import type { StepDeps } from './deps.js';
import type { OnPremClient } from '../onprem/client.js';

export function permanent(message: string): object {
  return { kind: 'internal', transient: false, message };
}

export function onpremClient(deps: StepDeps): OnPremClient {
  if (!deps.onprem) throw permanent('the On-Premises client URL and admin credentials are needed: --onprem-url and WABA_ONPREM_USER + WABA_ONPREM_PASSWORD (or WABA_ONPREM_TOKEN)');
  return deps.onprem;
}

/** Makes a backup (in memory only) unless this run already holds one. */
export async function ensureBackup(deps: StepDeps): Promise<{ data: string; password: string }> {
  const password = deps.secrets.backupPassword;
  if (!password) throw permanent('the backup password is needed: set WABA_BACKUP_PASSWORD or use --backup-password-file (it is never stored)');
  deps.secrets.backupData ??= await onpremClient(deps).backup(password);
  return { data: deps.secrets.backupData, password };
}
