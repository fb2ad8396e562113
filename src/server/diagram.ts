/**
 * The machine diagram as server-side SVG, generated from the machine's own state nodes (as
 * `machines/mermaid.ts` does for the README), laid out by dagre. No browser-side Mermaid and no
 * CDN: the page stays self-contained under `default-src 'self'`. Nested states (inside
 * `registering`) are drawn as their top-level state, since that is what the history records.
 * Styling is by class only (no inline styles, which the CSP forbids).
 */
import dagre from '@dagrejs/dagre';
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { html, type Html } from './html.js';

type Transition = { target?: readonly AnyStateNode[] | undefined; guard?: unknown };

interface Layout {
  width: number;
  height: number;
  nodes: { id: string; x: number; y: number; w: number; h: number; kind: 'state' | 'start' | 'choice' | 'final' }[];
  edges: { from: string; to: string; points: { x: number; y: number }[]; events: string[] }[];
  notes: string[];
}

const START = '__start';

function eventLabel(eventType: string): string {
  const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(eventType);
  if (m) return m[1] === 'done' ? `${m[2]} ok` : `${m[2]} error`;
  return eventType === '' ? 'always' : eventType;
}

export function layoutMachine(machine: AnyStateMachine): Layout {
  const root = machine.root as AnyStateNode;
  const top = (n: AnyStateNode) => n.path[0]!;
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 28, ranksep: 42, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const kinds = new Map<string, Layout['nodes'][number]['kind']>();
  g.setNode(START, { width: 14, height: 14 });
  kinds.set(START, 'start');
  const edges = new Map<string, Set<string>>();
  const addEdge = (from: string, to: string, label: string) => {
    if (from === to) return;
    const key = `${from}\u0000${to}`;
    if (!edges.has(key)) edges.set(key, new Set());
    edges.get(key)!.add(label);
  };
  addEdge(START, root.config.initial as string, 'start');
  const visit = (node: AnyStateNode, owner: string) => {
    for (const [eventType, ts] of node.transitions as Map<string, Transition[]>) for (const t of ts) for (const target of t.target ?? []) addEdge(owner, top(target), eventLabel(eventType));
    for (const t of (node.always ?? []) as Transition[]) for (const target of t.target ?? []) addEdge(owner, top(target), 'always');
    for (const c of Object.values(node.states) as AnyStateNode[]) visit(c, owner);
  };
  for (const s of Object.values(root.states) as AnyStateNode[]) {
    const name = top(s);
    // Transient choice points (only `always` transitions, e.g. `route`) are drawn small.
    const choice = s.transitions.size === 0 && (s.always ?? []).length > 0;
    kinds.set(name, choice ? 'choice' : s.type === 'final' ? 'final' : 'state');
    g.setNode(name, choice ? { width: 70, height: 28 } : { width: Math.max(90, name.length * 7.4 + 24), height: 32 });
    visit(s, name);
  }
  // Hubs: a state entered from five or more states (waiting_retry, failed) would pull two dozen
  // crossing lines through the picture. Their edges become one generated note each instead.
  const notes: string[] = [];
  const inbound = new Map<string, string[]>();
  const outbound = new Map<string, string[]>();
  for (const key of edges.keys()) {
    const [from, to] = key.split('\u0000') as [string, string];
    inbound.set(to, [...(inbound.get(to) ?? []), from]);
    outbound.set(from, [...(outbound.get(from) ?? []), to]);
  }
  const hubIn = new Set([...inbound].filter(([, f]) => f.length >= 5).map(([t]) => t));
  const hubOut = new Set([...outbound].filter(([n, t]) => t.length >= 5 && kinds.get(n) !== 'choice').map(([n]) => n));
  for (const h of hubIn) notes.push(`${inbound.get(h)!.join(', ')} → ${h} (${[...new Set(inbound.get(h)!.flatMap((f) => [...edges.get(`${f}\u0000${h}`)!]))].join(', ')})`);
  for (const h of hubOut) notes.push(`${h} → ${outbound.get(h)!.join(', ')} (${[...new Set(outbound.get(h)!.flatMap((t) => [...edges.get(`${h}\u0000${t}`)!]))].join(', ')})`);
  for (const key of [...edges.keys()]) {
    const [from, to] = key.split('\u0000') as [string, string];
    if (hubIn.has(to) || hubOut.has(from)) edges.delete(key);
    else g.setEdge(from, to);
  }
  dagre.layout(g);
  for (const [eventType, ts] of root.transitions as Map<string, Transition[]>)
    for (const t of ts) for (const target of t.target ?? []) notes.push(`${eventType} from any state → ${top(target)}`);
  let width = 0;
  let height = 0;
  for (const id of g.nodes()) {
    const n = g.node(id) as { x: number; y: number; width: number; height: number };
    width = Math.max(width, n.x + n.width / 2 + 8);
    height = Math.max(height, n.y + n.height / 2 + 8);
  }
  for (const e of g.edges()) for (const p of (g.edge(e) as { points: { x: number; y: number }[] }).points) (width = Math.max(width, p.x + 8)), (height = Math.max(height, p.y + 8));
  return {
    width: Math.ceil(width),
    height: Math.ceil(height),
    nodes: g.nodes().map((id: string) => {
      const n = g.node(id) as { x: number; y: number; width: number; height: number };
      return { id, x: n.x, y: n.y, w: n.width, h: n.height, kind: kinds.get(id) ?? 'state' };
    }),
    edges: [...edges.entries()].map(([key, labels]) => {
      const [from, to] = key.split('\u0000') as [string, string];
      const e = g.edge(from, to) as { points: { x: number; y: number }[] };
      return { from, to, points: e.points, events: [...labels] };
    }),
    notes,
  };
}

let cached: Layout | null = null;

/** The SVG with `current` highlighted and the states in `visited` marked. */
export function machineSvg(machine: AnyStateMachine, current: string | null, visited: ReadonlySet<string>): Html {
  cached ??= layoutMachine(machine);
  const l = cached;
  const f = (n: number) => n.toFixed(1);
  const edges = l.edges.map((e) => {
    const d = e.points.map((p, i) => `${i ? 'L' : 'M'}${f(p.x)},${f(p.y)}`).join(' ');
    const walked = visited.has(e.from) && visited.has(e.to);
    return html`<path class="edge${walked ? ' walked' : ''}" d="${d}" marker-end="url(#arrow)"><title>${e.from === START ? 'start' : e.from} → ${e.to}: ${e.events.join(', ')}</title></path>`;
  });
  const nodes = l.nodes.map((n) => {
    const cls = [n.kind, n.id === current ? 'current' : '', visited.has(n.id) ? 'visited' : ''].filter(Boolean).join(' ');
    if (n.kind === 'start') return html`<circle class="${cls}" cx="${f(n.x)}" cy="${f(n.y)}" r="7"/>`;
    return html`<g class="node ${cls}" data-state-node="${n.id}"><rect x="${f(n.x - n.w / 2)}" y="${f(n.y - n.h / 2)}" width="${f(n.w)}" height="${f(n.h)}" rx="${n.kind === 'choice' ? 14 : 6}"/><text x="${f(n.x)}" y="${f(n.y + 4)}" text-anchor="middle">${n.id}</text></g>`;
  });
  return html`<svg class="machine" role="img" aria-label="state machine, current state ${current ?? 'none'}" viewBox="0 0 ${l.width} ${l.height}" width="${l.width}" height="${l.height}" xmlns="http://www.w3.org/2000/svg"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>${edges}${nodes}</svg>${l.notes.map((n) => html`<p class="note">${n}</p>`)}`;
}
