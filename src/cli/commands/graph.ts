/** `waba-migrate graph`: the machine as Mermaid (or JSON with --json), generated from the machine itself. */
import type { Command } from 'commander';

export function registerGraph(program: Command): void {
  program
    .command('graph')
    .description('print the state machine as a Mermaid stateDiagram-v2 (--json: states and transitions)')
    .action(async (_o: unknown, cmd: Command) => {
      const { migrationMachine } = await import('../../../machines/migration.js');
      const { globals } = await import('../globals.js');
      const g = globals(cmd);
      if (!g.json) {
        const { toMermaid } = await import('../../../machines/mermaid.js');
        process.stdout.write(toMermaid(migrationMachine));
        return;
      }
      // The same walk as the Mermaid output: every state node and every transition out of it.
      const states: { id: string; type: string; initial: string | null }[] = [];
      const transitions: { from: string; to: string; event: string }[] = [];
      type Node = { id: string; type: string; initial?: { target?: { id: string }[] }; states: Record<string, Node>; transitions: Map<string, { target?: { id: string }[] }[]>; always?: { target?: { id: string }[] }[] };
      const strip = (id: string) => id.replace(/^migration\./, '');
      const walk = (n: Node) => {
        for (const child of Object.values(n.states)) {
          states.push({ id: strip(child.id), type: child.type, initial: child.initial?.target?.[0] ? strip(child.initial.target[0].id) : null });
          for (const [event, list] of child.transitions) for (const t of list) for (const target of t.target ?? []) transitions.push({ from: strip(child.id), to: strip(target.id), event });
          for (const t of child.always ?? []) for (const target of t.target ?? []) transitions.push({ from: strip(child.id), to: strip(target.id), event: '(always)' });
          walk(child);
        }
      };
      walk(migrationMachine.root as unknown as Node);
      process.stdout.write(`${JSON.stringify({ id: migrationMachine.id, initial: strip((migrationMachine.root as unknown as Node).initial?.target?.[0]?.id ?? ''), states, transitions }, null, 2)}\n`);
    });
}
