/**
 * The dashboard's in-memory picture of the store: one small summary per migration, counts by
 * state, and a feed of every transition as it is written (by this process or any other using
 * the same store), driven by `store.watch`. Pages and list calls read this index, so an overview
 * over 10,000 migrations costs a walk over memory, not 10,000 file reads. One migration's detail
 * and history are always read fresh from the store.
 */
import { STATE_NAMES, type MigrationContext, type StateName } from '../../machines/migration.js';
import type { CallSummary } from '../graph/client.js';
import { toView, type MigrationView } from '../runner/view.js';
import type { MigrationDocument } from '../store/document.js';
import type { MigrationStore } from '../store/store.js';

/** Why a person must act, or null when the migration can move (or is over) without one. */
export type Attention = 'code' | 'pin' | 'override' | 'blocked' | 'failed';

export interface MigrationSummary {
  id: string;
  state: StateName;
  substate: string | null;
  phone: string;
  phoneNumberId: string | null;
  sourceWabaId: string;
  destWabaId: string;
  batch: string | null;
  attention: Attention | null;
  nextAction: string;
  createdAt: string;
  updatedAt: string;
}

/** One history entry as the event feed sends it. */
export interface TransitionEvent {
  /** Increases by one per event sent by this server (the SSE id). */
  seq: number;
  id: string;
  n: number;
  from: StateName | null;
  to: StateName;
  event: string;
  at: string;
  by: string;
  calls: CallSummary[];
  /** The migration as it stands after the write that carried this entry. */
  migration: MigrationSummary;
  counts: Record<StateName, number>;
}

export function attentionOf(doc: MigrationDocument): Attention | null {
  const ctx = doc.snapshot.context as Partial<MigrationContext>;
  switch (doc.state) {
    case 'awaiting_code':
      return 'code';
    case 'blocked':
      return 'blocked';
    case 'failed':
      return 'failed';
    case 'registering':
      return ctx.hold === 'pin' ? 'pin' : ctx.hold === 'register_limit' ? 'override' : null;
    default:
      return null;
  }
}

export function summarize(doc: MigrationDocument, view: MigrationView = toView(doc)): MigrationSummary {
  return {
    id: doc.id,
    state: doc.state,
    substate: view.substate,
    phone: view.phone,
    phoneNumberId: view.phoneNumberId,
    sourceWabaId: view.sourceWabaId,
    destWabaId: view.destWabaId,
    batch: (doc as { batch?: string | null }).batch ?? null,
    attention: attentionOf(doc),
    nextAction: view.nextAction,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

interface Entry {
  summary: MigrationSummary;
  /** History entries already announced. */
  seen: number;
  /** When the next action's wording changes with time alone (a resend allowed, a code gone stale). */
  refreshAt: number | null;
}

/** The next moment `nextAction` reads differently without any write (see view.ts). Use the same
 *  `now` as the summary's: with a later one, a resend time passed in between is neither shown
 *  ("after") nor kept to refresh at, and the wording would stay stale until the next write. */
function refreshAtOf(doc: MigrationDocument, now: number): number | null {
  if (doc.state !== 'awaiting_code') return null;
  const c = (doc.snapshot.context as Partial<MigrationContext>).code;
  const times = [c?.resendAllowedAt, c?.staleAt].filter((t): t is number => typeof t === 'number' && t > now);
  return times.length ? Math.min(...times) : null;
}

const zeroCounts = () => Object.fromEntries(STATE_NAMES.map((s) => [s, 0])) as Record<StateName, number>;
const RECENT = 1_000;

export class LiveIndex {
  readonly #store: MigrationStore;
  readonly #entries = new Map<string, Entry>();
  readonly #counts = zeroCounts();
  /** Documents that could not be read: id → message (shown, never fatal). */
  readonly problems = new Map<string, string>();
  readonly #listeners = new Set<(t: TransitionEvent) => void>();
  /** Told of every write to a migration, with or without a transition (a delivery recorded). */
  readonly #changeListeners = new Set<(id: string) => void>();
  /** The last events, so a client that reconnects with Last-Event-ID misses nothing recent. */
  readonly #recent: TransitionEvent[] = [];
  #seq = 0;
  #unwatch: (() => void) | null = null;
  /** Per-id chains: refreshes of one migration apply in order. */
  readonly #chains = new Map<string, Promise<void>>();

  #sweep: NodeJS.Timeout | null = null;
  readonly #sweepMs: number;
  readonly #now: () => number;

  constructor(store: MigrationStore, options: { sweepMs?: number; now?: () => number } = {}) {
    this.#store = store;
    this.#sweepMs = options.sweepMs ?? 5_000;
    this.#now = options.now ?? Date.now;
  }

  /** A document's summary and the time its wording next changes, both as of one reading of the clock. */
  #summary(doc: MigrationDocument): { summary: MigrationSummary; refreshAt: number | null } {
    const now = this.#now();
    return { summary: summarize(doc, toView(doc, now)), refreshAt: refreshAtOf(doc, now) };
  }

  /** Subscribes first, then scans, so no write between the two is missed. */
  async start(): Promise<void> {
    const early: string[] = [];
    let scanning = true;
    this.#unwatch = this.#store.watch((id) => (scanning ? early.push(id) : this.refresh(id)));
    // Subscribed before the scan reads anything: a write during the scan is re-read after it.
    await this.#store.watching();
    await this.#store.scan((m) => {
      if (m.doc) {
        const { summary, refreshAt } = this.#summary(m.doc);
        this.#put(m.id, summary, m.doc.history.length, refreshAt);
      }
      else if (m.error) this.problems.set(m.id, m.error.message);
      return null;
    });
    scanning = false;
    for (const id of early) void this.refresh(id);
    // Re-reads the few migrations whose next action changed with the clock alone.
    this.#sweep = setInterval(() => {
      const now = this.#now();
      for (const [id, e] of this.#entries) if (e.refreshAt !== null && e.refreshAt <= now) void this.refresh(id);
    }, this.#sweepMs);
    this.#sweep.unref();
  }

  stop(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    this.#unwatch?.();
    this.#unwatch = null;
    this.#listeners.clear();
    this.#changeListeners.clear();
  }

  /** Re-reads one migration and announces the history entries not seen yet. */
  refresh(id: string): Promise<void> {
    const next = (this.#chains.get(id) ?? Promise.resolve()).then(() => this.#refresh(id)).catch(() => {});
    this.#chains.set(id, next);
    void next.then(() => {
      if (this.#chains.get(id) === next) this.#chains.delete(id);
    });
    return next;
  }

  /** Resolves when every refresh under way has been applied (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.#chains.size) await Promise.all([...this.#chains.values()]);
  }

  async #refresh(id: string): Promise<void> {
    let doc: MigrationDocument;
    try {
      doc = await this.#store.load(id);
    } catch (e) {
      const name = (e as Error).name;
      if (name === 'MigrationNotFoundError') {
        this.#remove(id);
        this.problems.delete(id);
      }
      else if (name === 'StateDocumentError') this.problems.set(id, (e as Error).message);
      return;
    }
    this.problems.delete(id);
    const seen = this.#entries.get(id)?.seen ?? 0;
    const { summary, refreshAt } = this.#summary(doc);
    this.#put(id, summary, doc.history.length, refreshAt);
    for (const h of doc.history) {
      if (h.n <= seen) continue;
      this.#emit({ seq: 0, id, n: h.n, from: h.from, to: h.to, event: h.event.type, at: h.at, by: h.by, calls: h.calls, migration: summary, counts: this.counts() });
    }
    for (const l of this.#changeListeners) l(id);
  }

  #put(id: string, summary: MigrationSummary, seen: number, refreshAt: number | null): void {
    const prev = this.#entries.get(id);
    if (prev) this.#counts[prev.summary.state]--;
    this.#counts[summary.state]++;
    this.#entries.set(id, { summary, seen: Math.max(seen, prev?.seen ?? 0), refreshAt });
  }

  #remove(id: string): void {
    const prev = this.#entries.get(id);
    if (!prev) return;
    this.#counts[prev.summary.state]--;
    this.#entries.delete(id);
  }

  #emit(t: TransitionEvent): void {
    t.seq = ++this.#seq;
    this.#recent.push(t);
    if (this.#recent.length > RECENT) this.#recent.splice(0, this.#recent.length - RECENT);
    for (const l of this.#listeners) l(t);
  }

  /** Every future write to any migration (its id); returns the unsubscribe. */
  subscribeChanges(listener: (id: string) => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Every future event; returns the unsubscribe. */
  subscribe(listener: (t: TransitionEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  /** Events after `seq` still in memory (for Last-Event-ID). */
  since(seq: number): TransitionEvent[] {
    return this.#recent.filter((t) => t.seq > seq);
  }

  counts(): Record<StateName, number> {
    return { ...this.#counts };
  }

  get size(): number {
    return this.#entries.size;
  }

  get(id: string): MigrationSummary | undefined {
    return this.#entries.get(id)?.summary;
  }

  all(): IterableIterator<MigrationSummary> {
    const it = this.#entries.values();
    return (function* () {
      for (const e of it) yield e.summary;
    })();
  }
}
