/** `waba-migrate status <id>` and `waba-migrate list`: read-only, no lock, no token. */
import type { Command } from 'commander';

export function registerStatus(program: Command): void {
  program
    .command('status <id>')
    .description('where one migration stands and what a person must do next')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { default: Table } = await import('cli-table3');
      const { globals, readOnlyEngine } = await import('../context.js');
      const { checksTable, printJson, printView } = await import('../output.js');
      const g = globals(cmd);
      const view = await readOnlyEngine(g).get(id);
      if (g.json) return printJson(view);
      printView(view);
      if (view.state !== 'blocked' && view.checks.length) process.stdout.write(`${checksTable(view.checks)}\n`);
    });

  program
    .command('list')
    .description('every migration in the state directory')
    .action(async (_o: unknown, cmd: Command) => {
      const { default: Table } = await import('cli-table3');
      const { globals, readOnlyEngine } = await import('../context.js');
      const { checksTable, printJson, printView } = await import('../output.js');
      const g = globals(cmd);
      const views = await readOnlyEngine(g).list((e) => process.stderr.write(`waba-migrate: skipped ${e.message}\n`));
      if (g.json) return printJson(views);
      if (!views.length) {
        process.stdout.write(`No migrations in ${g.stateDir}.\n`);
        return;
      }
      const t = new Table({ head: ['id', 'state', 'phone', 'phone_number_id', 'updated', 'next action'], colWidths: [30, 16, 16, 18, 22, 60], wordWrap: true, style: { head: [], border: [] } });
      for (const v of views) t.push([v.id, v.state, v.phone, v.phoneNumberId ?? '-', v.updatedAt.replace('T', ' ').slice(0, 19), v.nextAction]);
      process.stdout.write(`${t.toString()}\n`);
    });
}
