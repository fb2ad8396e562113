/**
 * `store copy`: moves every migration (with its full history) and batch from one store to
 * another, e.g. a file state directory into PostgreSQL, or back for a support escalation.
 *
 * Idempotent: a migration already in the target with the same content is left as is, so an
 * interrupted copy is finished by running it again. A migration that exists in the target with
 * different content is never overwritten: the copy refuses before writing anything. Each
 * migration is copied under both stores' locks (no worker may move it meanwhile), and the result
 * is verified by reading it back.
 */
import { StateDocumentError, type BatchRecord, type MigrationDocument } from './document.js';
import { existsSync } from 'node:fs';
import { StoreUrlError } from './open.js';
import { FileStore, MigrationNotFoundError, type MigrationStore } from './store.js';
import { BatchNotFoundError } from './document.js';

/** The target holds a different migration or batch under the same id (exit 2, names it). */
export class StoreCopyConflictError extends Error {
  override readonly name = 'StoreCopyConflictError';
  constructor(
    readonly what: 'migration' | 'batch',
    readonly id: string,
    target: string,
    detail: string,
  ) {
    super(`${what} "${id}" already exists in ${target} with different content (${detail}); nothing was written. Remove it from the target or copy into an empty store`);
  }
}

export interface CopyReport {
  from: string;
  to: string;
  migrations: number;
  copied: number;
  unchanged: number;
  historyEntries: number;
  batches: number;
  batchesCopied: number;
}

/** Key-order independent JSON, to compare a document with its round trip through jsonb. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

function difference(a: MigrationDocument, b: MigrationDocument): string {
  if (a.state !== b.state) return `state ${a.state} here, ${b.state} there`;
  if (a.history.length !== b.history.length) return `${a.history.length} history entries here, ${b.history.length} there`;
  return 'the documents differ';
}

async function loadOrNull(store: MigrationStore, id: string): Promise<MigrationDocument | null> {
  try {
    return await store.load(id);
  } catch (e) {
    if (e instanceof MigrationNotFoundError) return null;
    throw e;
  }
}

async function batchOrNull(store: MigrationStore, id: string): Promise<BatchRecord | null> {
  try {
    return await store.loadBatch(id);
  } catch (e) {
    if (e instanceof BatchNotFoundError) return null;
    throw e;
  }
}

export async function copyStore(from: MigrationStore, to: MigrationStore, onProgress?: (id: string, action: 'copied' | 'unchanged') => void): Promise<CopyReport> {
  // A mistyped source must not look like an empty store that was copied successfully.
  if (from instanceof FileStore && !existsSync(from.dir)) throw new StoreUrlError(`--from: there is no state directory at ${from.dir}; check the path`);
  // Pass 1, read only: every source document must be readable and every id free or identical.
  const ids = await from.scan((m) => {
    if (m.error) throw m.error;
    return m.id;
  });
  const todo: string[] = [];
  for (const id of ids) {
    const src = await from.load(id);
    const dst = await loadOrNull(to, id);
    if (!dst) todo.push(id);
    else if (canonical(src) !== canonical(dst)) throw new StoreCopyConflictError('migration', id, to.where, difference(src, dst));
  }
  const batches = await from.listBatches();
  const batchTodo: BatchRecord[] = [];
  for (const b of batches) {
    const dst = await batchOrNull(to, b.id);
    if (!dst) batchTodo.push(b);
    else if (canonical(b) !== canonical(dst)) throw new StoreCopyConflictError('batch', b.id, to.where, 'the records differ');
  }

  // Pass 2: copy, each migration under both stores' locks (a running worker makes this stop).
  let historyEntries = 0;
  for (const id of ids) {
    if (!todo.includes(id)) {
      onProgress?.(id, 'unchanged');
      continue;
    }
    const leases = [await from.lock(id)];
    try {
      leases.push(await to.lock(id));
      const src = await from.load(id);
      const dst = await loadOrNull(to, id);
      if (dst) {
        if (canonical(src) !== canonical(dst)) throw new StoreCopyConflictError('migration', id, to.where, difference(src, dst));
        continue; // written meanwhile by another copy
      }
      const handle = await to.create(structuredClone(src));
      await handle.save({ durable: true });
      onProgress?.(id, 'copied');
    } finally {
      for (const l of leases.reverse()) await l.release();
    }
  }
  for (const b of batchTodo) await to.saveBatch(b);
  // Endpoints a receiver disabled (410) stay disabled in the target (a record already there stays).
  for (const d of await from.disabledEndpoints()) await to.disableEndpoint(d);

  // Verify: every source migration reads back from the target identical, history included.
  for (const id of ids) {
    const src = await from.load(id);
    const dst = await to.load(id);
    if (canonical(src) !== canonical(dst)) throw new StateDocumentError('invalid', `${to.where}#${id}`, `verification failed: ${id} in ${to.where} differs from ${from.where} after the copy (${difference(src, dst)})`);
    historyEntries += dst.history.length;
  }
  for (const b of batches) {
    if (canonical(b) !== canonical(await to.loadBatch(b.id))) throw new StateDocumentError('invalid', `${to.where}#batch/${b.id}`, `verification failed: batch ${b.id} differs after the copy`);
  }
  const targetIds = new Set(await to.scan((m) => m.id));
  const missing = ids.filter((id) => !targetIds.has(id));
  if (missing.length) throw new Error(`verification failed: ${missing.length} migrations missing from ${to.where} (first: ${missing[0]})`);
  return {
    from: from.where,
    to: to.where,
    migrations: ids.length,
    copied: todo.length,
    unchanged: ids.length - todo.length,
    historyEntries,
    batches: batches.length,
    batchesCopied: batchTodo.length,
  };
}
