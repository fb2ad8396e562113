/**
 * The read side of batches: what `batch status` and `batch list` need. It loads neither the
 * engine nor the Graph client (a 10,000-row `batch status` spent a fifth of its time loading
 * undici and xstate it never used), only the store, the documents and their views.
 */
import { readFileSync } from 'node:fs';
import type { StateName } from '../../machines/migration.js';
import { parseMigrationId } from '../runner/validate.js';
import { nextAction } from '../runner/view.js';
import type { BatchRecord, GroupCheck, MigrationDocument } from '../store/document.js';
import { FileStore, parseDocument, type MigrationStore } from '../store/store.js';

export type Need = 'code' | 'pin' | 'register_override' | 'fix_prerequisites' | 'fix_failure';

export interface BatchRowStatus {
  line: number;
  phone: string;
  migrationId: string;
  state: StateName | 'pending';
  need: Need | null;
  nextAction: string;
}

export interface BatchSummary {
  id: string;
  createdAt: string;
  createdBy: string;
  options: Record<string, unknown>;
  cancelled: BatchRecord['cancelled'];
  total: number;
  /** Rows by state; `pending` = no migration yet (the batch was interrupted before it). */
  counts: Record<string, number>;
  /** Rows that wait for a person, and what each needs. */
  needsPerson: BatchRowStatus[];
  /** Rows resting because Meta's rate limit paused their WABA. */
  throttled: BatchRowStatus[];
  groupChecks: GroupCheck[];
  rows: BatchRowStatus[];
}

/** What a person must do for this migration to move, or null. */
export function needOf(doc: MigrationDocument): Need | null {
  const ctx = doc.snapshot.context as { hold?: string | null };
  switch (doc.state) {
    case 'awaiting_code':
      return 'code';
    case 'registering':
      return ctx.hold === 'pin' ? 'pin' : ctx.hold === 'register_limit' ? 'register_override' : null;
    case 'blocked':
      return 'fix_prerequisites';
    case 'failed':
      return 'fix_failure';
    default:
      return null;
  }
}

function isThrottled(doc: MigrationDocument): boolean {
  if (doc.state !== 'waiting_retry') return false;
  const r = (doc.snapshot.context as { retry?: { error?: { code?: number | null; message?: string } } | null }).retry;
  const e = r?.error;
  return Boolean(e && ((e.code !== null && e.code !== undefined && [80007, 4, 130429].includes(e.code)) || e.message?.startsWith('throttled by Meta')));
}

/** One migration's row summary, as batch status shows it (null: no such document). */
export interface RowFacts {
  id: string;
  state: StateName;
  need: Need | null;
  nextAction: string;
  throttled: boolean;
}

function factsOf(doc: MigrationDocument, now: number): RowFacts {
  return { id: doc.id, state: doc.state, need: needOf(doc), nextAction: nextAction(doc, now), throttled: isThrottled(doc) };
}

/** A document that cannot be read is shown as a failure that needs a person, with why. */
function unreadable(id: string, message: string): RowFacts {
  return { id, state: 'failed', need: 'fix_failure', nextAction: message, throttled: false };
}

/**
 * The facts of the file store's documents `ids`: each file read directly (a file per migration),
 * so a batch's status reads its own documents and no others, without listing the folder.
 * (Splitting this across a second thread was measured too: slower, with its start-up and copying,
 * and heavier, with a second heap.)
 */
function readFacts(store: FileStore, ids: string[], now: number): RowFacts[] {
  const out: RowFacts[] = [];
  for (const id of ids) {
    let file = id;
    let text: string;
    try {
      file = store.file(id);
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      out.push(unreadable(id, (e as Error).message));
      continue;
    }
    try {
      out.push(factsOf(parseDocument(text, file, id, { withoutHistory: true }), now));
    } catch (e) {
      out.push(unreadable(id, (e as Error).message));
    }
  }
  return out;
}

/**
 * The facts of the documents `ids` (a missing one is left out: not started). `batch status` and
 * `batch list` both count from these, so they agree: a damaged or unreadable document is a failure.
 */
async function factsFor(store: MigrationStore, ids: Set<string>, now: number): Promise<RowFacts[]> {
  // Only these documents, each read once (a file per migration: no scan of the rest).
  if (store instanceof FileStore) return readFacts(store, [...ids], now);
  // One pass over the store: each wanted document is summarised and dropped.
  const out: RowFacts[] = [];
  await store.scan(
    (m) => {
      if (ids.has(m.id)) out.push(m.doc ? factsOf(m.doc, now) : unreadable(m.id, m.error?.message ?? 'unreadable'));
    },
    { withoutHistory: true },
  );
  return out;
}

/** Where every row of batch `id` stands; reads only (no lock, no token). */
export async function batchStatus(store: MigrationStore, id: string): Promise<BatchSummary> {
  parseMigrationId(id, 'batch');
  const record = await store.loadBatch(id);
  const want = new Map(record.rows.map((r) => [r.migrationId, r]));
  const found = new Map<string, BatchRowStatus>();
  const now = Date.now();
  const throttled: BatchRowStatus[] = [];
  const take = (f: RowFacts) => {
    const row = want.get(f.id)!;
    const s: BatchRowStatus = { line: row.line, phone: row.phone, migrationId: f.id, state: f.state, need: f.need, nextAction: f.nextAction };
    found.set(f.id, s);
    if (f.throttled) throttled.push(s);
  };
  for (const f of await factsFor(store, new Set(want.keys()), now)) take(f);
  const rows = record.rows.map(
    (r) => found.get(r.migrationId) ?? { line: r.line, phone: r.phone, migrationId: r.migrationId, state: 'pending' as const, need: null, nextAction: `not started yet: waba-migrate batch resume ${id}` },
  );
  const counts: Record<string, number> = {};
  for (const r of rows) counts[r.state] = (counts[r.state] ?? 0) + 1;
  return {
    id: record.id,
    createdAt: record.createdAt,
    createdBy: record.createdBy,
    options: record.options,
    cancelled: record.cancelled,
    total: rows.length,
    counts,
    needsPerson: rows.filter((r) => r.need !== null),
    throttled,
    groupChecks: record.groupChecks,
    rows,
  };
}

/** Every batch, oldest first, with its counts. */
export async function listBatches(store: MigrationStore): Promise<{ id: string; createdAt: string; createdBy: string; total: number; cancelled: boolean; counts: Record<string, number> }[]> {
  const batches = await store.listBatches();
  // Each batch's rows, counted from the same facts as `batch status` (factsFor).
  const owner = new Map<string, string>();
  for (const b of batches) for (const r of b.rows) owner.set(r.migrationId, b.id);
  const byBatch = new Map<string, Record<string, number>>();
  for (const f of await factsFor(store, new Set(owner.keys()), Date.now())) {
    const b = owner.get(f.id)!;
    const c = byBatch.get(b) ?? {};
    c[f.state] = (c[f.state] ?? 0) + 1;
    byBatch.set(b, c);
  }
  return batches
    .map((b) => {
      const counts = { ...(byBatch.get(b.id) ?? {}) };
      const started = Object.values(counts).reduce((a, n) => a + n, 0);
      if (b.rows.length > started) counts.pending = b.rows.length - started;
      return { id: b.id, createdAt: b.createdAt, createdBy: b.createdBy, total: b.rows.length, cancelled: b.cancelled !== null, counts };
    })
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}
