/** `waba-migrate graph`: the machine as Mermaid, generated from the machine itself. */
import type { Command } from 'commander';

export function registerGraph(program: Command): void {
  program
    .command('graph')
    .description('print the state machine as a Mermaid stateDiagram-v2')
    .action(async () => {
      const { migrationMachine } = await import('../../../machines/migration.js');
      const { toMermaid } = await import('../../../machines/mermaid.js');
      process.stdout.write(toMermaid(migrationMachine));
    });
}
