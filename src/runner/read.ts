/**
 * The read side: what `status`, `list` and `audit` need. Reads documents without the lock and
 * without loading the Graph client or the machine, so these commands start fast.
 */
import type { HistoryEntry, StateDocumentError } from '../store/document.js';
import type { MigrationStore, ScanOptions } from '../store/store.js';
import { parseMigrationId } from './validate.js';
import { toView, type MigrationView } from './view.js';
import { disabledFor } from '../notify/endpoint.js';
import { isPending } from '../notify/events.js';

/** One migration's view; with pending notifications, whether their endpoint is disabled (the
 *  one of `notifyUrl`, or without it the latest disabled one). */
export async function getView(store: MigrationStore, id: string, notifyUrl?: string | null): Promise<MigrationView> {
  parseMigrationId(id);
  const doc = await store.load(id);
  const disabled = doc.outbox?.some(isPending) ? disabledFor(await store.disabledEndpoints(), notifyUrl) : null;
  return toView(doc, Date.now(), disabled);
}

export async function getHistory(store: MigrationStore, id: string): Promise<HistoryEntry[]> {
  parseMigrationId(id);
  return (await store.load(id)).history;
}

/** Every readable migration's view; a damaged document goes to `onProblem`, not into the list. */
export async function listViews(store: MigrationStore, onProblem?: (e: StateDocumentError) => void, page: Pick<ScanOptions, 'after' | 'limit'> = {}): Promise<MigrationView[]> {
  const now = Date.now();
  // A view needs no history: a store may skip reading it.
  const views = await store.scan((m) => {
    if (m.error) onProblem?.(m.error);
    return m.doc ? toView(m.doc, now) : null;
  }, { ...page, withoutHistory: true });
  return views.filter((v): v is MigrationView => v !== null);
}

/**
 * The same views, handed to `onView` one at a time in id order and not kept: listing 10 000
 * migrations then holds one document at a time (bench, figure 4).
 */
export async function eachView(store: MigrationStore, onView: (v: MigrationView) => void, onProblem?: (e: StateDocumentError) => void, page: Pick<ScanOptions, 'after' | 'limit'> = {}): Promise<number> {
  const now = Date.now();
  let n = 0;
  await store.scan((m) => {
    if (m.error) onProblem?.(m.error);
    else if (m.doc) {
      onView(toView(m.doc, now));
      n++;
    }
    return null;
  }, { ...page, withoutHistory: true });
  return n;
}
