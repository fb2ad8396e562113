/**
 * The machine as a Mermaid `stateDiagram-v2`, generated from the machine's own state nodes
 * (so the README diagram cannot drift from the code: a test compares them).
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';

function label(eventType: string, guard: unknown): string {
  let text = eventType;
  const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(eventType);
  if (m) text = m[1] === 'done' ? `${m[2]} ok` : `${m[2]} error`;
  if (eventType === '') text = 'always';
  const g = guard as { type?: unknown } | string | undefined;
  const name = typeof g === 'string' ? g : g && typeof g === 'object' && typeof g.type === 'string' ? g.type : typeof guard === 'function' ? 'guarded' : '';
  return name ? `${text} [${name}]` : text;
}

export function toMermaid(machine: AnyStateMachine): string {
  const root = machine.root as AnyStateNode;
  const id = (n: AnyStateNode) => n.path.join('_');
  const edgesOf = (node: AnyStateNode, indent: string): string[] => {
    const out = new Set<string>();
    const add = (t: Transition, eventType: string) => {
      for (const target of t.target ?? []) out.add(`${indent}${id(node)} --> ${id(target)}: ${label(eventType, t.guard)}`);
    };
    for (const [eventType, ts] of node.transitions as Map<string, Transition[]>) for (const t of ts) add(t, eventType);
    for (const t of (node.always ?? []) as Transition[]) add(t, '');
    return [...out];
  };
  const lines = ['stateDiagram-v2', `  [*] --> ${root.config.initial as string}`];
  for (const s of Object.values(root.states) as AnyStateNode[]) {
    const children = Object.values(s.states) as AnyStateNode[];
    if (children.length) {
      lines.push(`  state ${id(s)} {`, `    [*] --> ${id((s.states as Record<string, AnyStateNode>)[s.config.initial as string]!)}`);
      for (const c of children) lines.push(...edgesOf(c, '    '));
      lines.push('  }');
    }
    lines.push(...edgesOf(s, '  '));
    if (s.type === 'final') lines.push(`  ${id(s)} --> [*]`);
  }
  for (const [eventType, ts] of root.transitions as Map<string, Transition[]>)
    for (const t of ts) for (const target of t.target ?? []) lines.push(`  note right of ${id(target)}: ${eventType} from any state`);
  return lines.join('\n') + '\n';
}

type Transition = { target?: readonly AnyStateNode[] | undefined; guard?: unknown };
