/** `waba-migrate cancel <id>`. */
import type { Command } from 'commander';

export function registerCancel(program: Command): void {
  program
    .command('cancel <id>')
    .description('cancel a migration (what Meta already did is not undone)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { globals, tokenlessEngine } = await import('../context.js');
      const { printJson, printView } = await import('../output.js');
      const g = globals(cmd);
      const view = await tokenlessEngine(g).cancel(id);
      if (g.json) printJson(view);
      else printView(view);
    });
}
