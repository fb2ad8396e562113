/**
 * The On-Premises path's CLI pieces (issue 12): its flags, and its secrets, which come only from
 * env, files or a masked prompt (never a flag value: it would show in `ps`).
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { OnPremSecrets } from '../runner/engine.js';
import { UsageError } from './errors.js';

export interface OnPremFlags {
  from?: string;
  onpremUrl?: string;
  waba?: string;
  carryWebhook?: boolean | string;
  carrySettings?: boolean;
  backupPasswordFile?: string;
}

/** `--from`, `--onprem-url`, `--waba`, `--carry-webhook [url]`, `--backup-password-file`. */
export function addOnPremOptions(cmd: Command, withSecrets = true): Command {
  cmd
    .addOption(new Option('--from <source>', 'waba (another WABA, the default) or onprem (an On-Premises API client)').choices(['waba', 'onprem']))
    .option('--onprem-url <url>', 'with --from onprem: the On-Premises client base URL (https; http only on loopback)')
    .option('--waba <id>', 'with --from onprem: the WABA the number is in (it stays there)')
    .option('--carry-webhook [url]', "with --from onprem: set the number's Cloud webhook override to this URL, or to the On-Premises webhooks.url")
    .option('--carry-settings', 'with --from onprem: apply the On-Premises show_security_notifications and notify_user_change_number to the number on the Cloud API');
  if (withSecrets) cmd.option('--backup-password-file <path>', 'file holding the On-Premises backup password (else env WABA_BACKUP_PASSWORD, or a prompt)');
  return cmd;
}

/** Commander made --source-waba/--dest-waba optional for --from onprem: require them otherwise. */
export function requireWabaFlags(o: { from?: string; sourceWaba?: string; destWaba?: string }): void {
  if (o.from === 'onprem') return;
  if (!o.sourceWaba) throw new UsageError("required option '--source-waba <id>' not specified (or use --from onprem --waba <id>)");
  if (!o.destWaba) throw new UsageError("required option '--dest-waba <id>' not specified");
}

function secretFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e}): give a readable file holding only the secret`);
  }
}

const env = (k: string) => {
  const v = process.env[k];
  return v !== undefined && v.trim() !== '' ? v.trim() : undefined;
};

/**
 * The On-Premises secrets from env (and the backup password from a file or a masked prompt).
 * `required`: the run will talk to the On-Premises client, so admin access and the backup
 * password must be there (else a usage error naming the variables; nothing is written).
 */
export async function readOnPremSecrets(flags: OnPremFlags, required: boolean): Promise<OnPremSecrets> {
  const s: OnPremSecrets = {};
  const user = env('WABA_ONPREM_USER');
  const password = env('WABA_ONPREM_PASSWORD');
  const token = env('WABA_ONPREM_TOKEN');
  if (token) s.token = token;
  if (user && password) Object.assign(s, { user, password });
  const backup = flags.backupPasswordFile ? secretFile(flags.backupPasswordFile, '--backup-password-file') : env('WABA_BACKUP_PASSWORD');
  if (backup) s.backupPassword = backup;
  const verify = env('WABA_WEBHOOK_VERIFY_TOKEN');
  if (verify) s.webhookVerifyToken = verify;
  const hook = env('WABA_WEBHOOK_URL');
  if (hook) s.webhookUrl = hook;
  if (!required) return s;
  if (!s.token && !s.user)
    throw new UsageError('On-Premises admin access missing: set WABA_ONPREM_USER and WABA_ONPREM_PASSWORD (admin login), or WABA_ONPREM_TOKEN; nothing was changed');
  if (!s.backupPassword) {
    const { interactive } = await import('./context.js');
    if (!interactive())
      throw new UsageError('backup password missing: set WABA_BACKUP_PASSWORD or pass --backup-password-file <path> (no TTY to prompt on); nothing was changed');
    const { default: ask } = await import('@inquirer/password');
    s.backupPassword = await ask({ message: 'On-Premises backup password (never stored):', mask: '*' }, { output: process.stderr });
  }
  return s;
}
