/** `waba-migrate resume <id>`: continue from the saved state, supplying what it waits for. */
import type { Command } from 'commander';
import type { MigrationContext } from '../../../machines/migration.js';

export function registerResume(program: Command): void {
  program
    .command('resume <id>')
    .description('continue a migration from its saved state; prompts on a TTY for the code and PIN')
    .option('--code <digits>', 'the 6-digit code Meta sent')
    .option('--confirm <check...>', 'confirm checks the API cannot see (e.g. two_step_disabled)')
    .option('--override-register-limit', 'allow spending the last register calls of the 72 h allowance')
    .action(async (id: string, o: { code?: string; confirm?: string[]; overrideRegisterLimit?: boolean }, cmd: Command) => {
      const { parseMigrationId } = await import('../../runner/validate.js');
      const { FileStore } = await import('../../store/store.js');
      const { globals, makeEngine, readCode, readPin, readToken } = await import('../context.js');
      const { runWithProgress } = await import('./run-shared.js');
      const g = globals(cmd);
      parseMigrationId(id);
      const token = readToken(g);
      // Decide what is missing before anything runs: without a TTY we exit 2, changing nothing.
      const doc = await new FileStore(g.stateDir).load(id);
      const ctx = doc.snapshot.context as MigrationContext;
      const awaitingCode = doc.state === 'awaiting_code';
      const towardsRegister =
        awaitingCode ||
        doc.state === 'verifying_code' ||
        doc.state === 'registering' ||
        (doc.state === 'waiting_retry' && (ctx.retry?.step === 'verifying_code' || ctx.retry?.step === 'registering')) ||
        (doc.state === 'failed' && ctx.codeVerified);
      const code = await readCode(o.code, awaitingCode);
      const pin = await readPin(g, towardsRegister);
      process.exitCode = await runWithProgress(g.json, (progress) =>
        makeEngine(g, token, progress).resume(id, {
          ...(code ? { code } : {}),
          ...(pin ? { pin } : {}),
          confirm: o.confirm ?? [],
          overrideRegisterLimit: o.overrideRegisterLimit === true,
        }),
      );
    });
}
