/**
 * The read side: what `status`, `list` and `audit` need. Reads documents without the lock and
 * without loading the Graph client or the machine, so these commands start fast.
 */
import type { HistoryEntry, StateDocumentError } from '../store/document.js';
import type { MigrationStore } from '../store/store.js';
import { parseMigrationId } from './validate.js';
import { toView, type MigrationView } from './view.js';

export async function getView(store: MigrationStore, id: string): Promise<MigrationView> {
  parseMigrationId(id);
  return toView(await store.load(id));
}

export async function getHistory(store: MigrationStore, id: string): Promise<HistoryEntry[]> {
  parseMigrationId(id);
  return (await store.load(id)).history;
}

/** Every readable migration's view; a damaged document goes to `onProblem`, not into the list. */
export async function listViews(store: MigrationStore, onProblem?: (e: StateDocumentError) => void): Promise<MigrationView[]> {
  const now = Date.now();
  const views = await store.scan((m) => {
    if (m.error) onProblem?.(m.error);
    return m.doc ? toView(m.doc, now) : null;
  });
  return views.filter((v): v is MigrationView => v !== null);
}

/**
 * The same views, handed to `onView` one at a time in id order and not kept: listing 10 000
 * migrations then holds one document at a time (bench, figure 4).
 */
export async function eachView(store: MigrationStore, onView: (v: MigrationView) => void, onProblem?: (e: StateDocumentError) => void): Promise<number> {
  const now = Date.now();
  let n = 0;
  await store.scan((m) => {
    if (m.error) onProblem?.(m.error);
    else if (m.doc) {
      onView(toView(m.doc, now));
      n++;
    }
    return null;
  });
  return n;
}
