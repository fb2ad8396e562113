/** `waba-migrate cancel <id>`: asks on a TTY unless --yes; the reason is recorded in the history. */
import type { Command } from 'commander';

export function registerCancel(program: Command): void {
  program
    .command('cancel <id>')
    .description('cancel a migration (what Meta already did is not undone)')
    .option('--reason <text>', 'why, recorded in the history', 'cancelled by the operator')
    .option('-y, --yes', 'do not ask for confirmation (asked only on a TTY)')
    .action(async (id: string, o: { reason: string; yes?: boolean }, cmd: Command) => {
      const { globals, interactive, tokenlessEngine } = await import('../context.js');
      const { printJson, printView } = await import('../output.js');
      const { getView } = await import('../../runner/read.js');
      const { EXIT, SilentExit, UsageError } = await import('../errors.js');
      const g = globals(cmd);
      const engine = await tokenlessEngine(g);
      const reason = o.reason.trim();
      if (!reason || reason.length > 500) throw new UsageError('--reason: give a short text (1-500 characters)', 'reason');
      // Asked only on a TTY (scripts are not interrupted); --yes skips the question.
      if (!o.yes && interactive() && !g.json) {
        // Read first: an unknown id is refused before asking.
        const view = await getView(engine.store, id).catch(async (e) => {
          await engine.store.close();
          throw e;
        });
        const { default: confirm } = await import('@inquirer/confirm');
        const ok = await confirm({ message: `Cancel migration ${id} (${view.phone}, now ${view.state})? Meta's side is not undone.`, default: false }, { output: process.stderr });
        if (!ok) {
          process.stderr.write('Not cancelled.\n');
          await engine.store.close();
          throw new SilentExit(EXIT.ok);
        }
      }
      const view = await engine.cancel(id, reason).finally(() => engine.store.close());
      if (g.json) printJson(view);
      else printView(view, { localTime: g.localTime });
    });
}
