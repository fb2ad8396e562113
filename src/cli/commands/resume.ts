/** `waba-migrate resume <id>`: continue from the saved state, supplying what it waits for. */
import type { Command } from 'commander';
import type { MigrationContext } from '../../../machines/migration.js';
import type { MigrationView } from '../../runner/view.js';

export function registerResume(program: Command): void {
  program
    .command('resume <id>')
    .description('continue a migration from its saved state; prompts on a TTY for the code and PIN')
    .option('--code <digits>', "the 6-digit code Meta sent; '-' reads it from standard input (preferred: a flag value shows in ps)")
    .option('--code-file <path>', 'a file holding the code (or env WABA_CODE)')
    .option('--confirm <check...>', 'confirm checks the API cannot see (e.g. two_step_disabled)')
    .option('--override-register-limit', 'allow spending the last register calls of the 72 h allowance')
    .option('--backup-password-file <path>', 'On-Premises path: file holding the backup password (else env WABA_BACKUP_PASSWORD)')
    .action(async (id: string, o: { backupPasswordFile?: string; code?: string; codeFile?: string; confirm?: string[]; overrideRegisterLimit?: boolean }, cmd: Command) => {
      const { parseMigrationId } = await import('../../runner/validate.js');
      const { openStore } = await import('../../store/open.js');
      const { globals, makeEngine, readCode, readPin, readToken } = await import('../context.js');
      const { runWithProgress } = await import('./run-shared.js');
      const g = globals(cmd);
      parseMigrationId(id);
      const token = readToken(g);
      // Decide what is missing before anything runs: without a TTY we exit 2, changing nothing.
      const doc = await (await openStore(g.store)).load(id);
      const ctx = doc.snapshot.context as MigrationContext;
      const awaitingCode = doc.state === 'awaiting_code';
      const towardsRegister =
        awaitingCode ||
        doc.state === 'verifying_code' ||
        doc.state === 'registering' ||
        (doc.state === 'waiting_retry' && (ctx.retry?.step === 'verifying_code' || ctx.retry?.step === 'registering')) ||
        (doc.state === 'failed' && ctx.codeVerified);
      const { EXIT } = await import('../errors.js');
      const { interactive } = await import('../context.js');
      let code = await readCode(o.code, awaitingCode, o.codeFile);
      const pin = await readPin(g, towardsRegister);
      const { readOnPremSecrets } = await import('../onprem.js');
      // The On-Premises client is needed only up to register (it is disconnected after it).
      const at = doc.state === 'waiting_retry' ? ctx.retry?.step : doc.state === 'failed' ? ctx.failure?.step : doc.state;
      const needsOnPrem = ['checking', 'blocked', 'snapshotting', 'backing_up', 'registering'].includes(at ?? '');
      const onprem = doc.input.from === 'onprem' ? await readOnPremSecrets(o, needsOnPrem) : undefined;
      for (;;) {
        let view: MigrationView | null = null;
        const exit = await runWithProgress(
          g.json,
          async (progress, signal) => {
            view = await (await makeEngine(g, token, progress, { signal, ...(onprem ? { onprem } : {}) })).resume(id, {
              ...(code ? { code } : {}),
              ...(pin ? { pin } : {}),
              confirm: o.confirm ?? [],
              overrideRegisterLimit: o.overrideRegisterLimit === true,
            });
            return view;
          },
          g.verbosity < 0,
        );
        const v = view as MigrationView | null;
        // A code was given and the migration still waits for one: Meta refused it.
        if (!code || !v || v.state !== 'awaiting_code') {
          process.exitCode = exit;
          return;
        }
        const { openStore } = await import('../../store/open.js');
        const store = await openStore(g.store);
        const refused = await lastVerifyError(store, id).finally(() => store.close());
        const stale = v.code && Date.parse(v.code.staleAt) <= Date.now();
        const words = refused ?? 'the code was not accepted';
        process.stderr.write(
          `Meta refused the code: ${words}\n` +
            (stale || /expired/i.test(words)
              ? `The code has expired: request a new one with: waba-migrate resend-code ${id}\n`
              : `Check the digits, or request a new code with: waba-migrate resend-code ${id}\n`),
        );
        if (g.json || !interactive() || o.code !== undefined || o.codeFile !== undefined || process.env.WABA_CODE) {
          process.exitCode = EXIT.wrongCode;
          return;
        }
        code = await readCode(undefined, true);
      }
    });
}

/** Meta's own words for the last refused verify_code call (the history keeps each call's error). */
async function lastVerifyError(store: { load(id: string): Promise<{ history: { calls: { path: string; error?: string }[] }[] }> }, id: string): Promise<string | null> {
  const doc = await store.load(id);
  for (let i = doc.history.length - 1; i >= 0; i--) {
    const call = doc.history[i]!.calls.find((c) => c.path.endsWith('/verify_code') && c.error);
    if (call) return call.error ?? null;
  }
  return null;
}
