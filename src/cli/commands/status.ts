/** `waba-migrate status <id>` and `waba-migrate list`: read-only, no lock, no token. */
import type { Command } from 'commander';

export function registerStatus(program: Command): void {
  program
    .command('status <id>')
    .description('where one migration stands and what a person must do next')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { globals } = await import('../globals.js');
      const { getView } = await import('../../runner/read.js');
      const { FileStore } = await import('../../store/store.js');
      const { checksTable, printJson, printView } = await import('../output.js');
      const g = globals(cmd);
      const view = await getView(new FileStore(g.stateDir), id);
      if (g.json) return printJson(view);
      printView(view);
      if (view.state !== 'blocked' && view.checks.length) process.stdout.write(`${checksTable(view.checks)}\n`);
    });

  program
    .command('list')
    .description('every migration in the state directory')
    .action(async (_o: unknown, cmd: Command) => {
      const { default: Table } = await import('cli-table3');
      const { globals } = await import('../globals.js');
      const { eachView, listViews } = await import('../../runner/read.js');
      const { FileStore } = await import('../../store/store.js');
      const g = globals(cmd);
      const store = new FileStore(g.stateDir);
      const problem = (e: { message: string }) => process.stderr.write(`waba-migrate: skipped ${e.message}\n`);
      if (g.json) {
        // Streamed: one migration object per line inside one JSON array, nothing held back.
        let buf = '[';
        let first = true;
        await eachView(
          store,
          (v) => {
            buf += `${first ? '\n' : ',\n'}${JSON.stringify(v)}`;
            first = false;
            if (buf.length > 1 << 16) {
              process.stdout.write(buf);
              buf = '';
            }
          },
          problem,
        );
        process.stdout.write(`${buf}${first ? ']' : '\n]'}\n`);
        return;
      }
      const views = await listViews(store, problem);
      if (!views.length) {
        process.stdout.write(`No migrations in ${g.stateDir}.\n`);
        return;
      }
      const t = new Table({ head: ['id', 'state', 'phone', 'phone_number_id', 'updated', 'next action'], colWidths: [30, 16, 16, 18, 22, 60], wordWrap: true, style: { head: [], border: [] } });
      for (const v of views) t.push([v.id, v.state, v.phone, v.phoneNumberId ?? '-', v.updatedAt.replace('T', ' ').slice(0, 19), v.nextAction]);
      process.stdout.write(`${t.toString()}\n`);
    });
}
