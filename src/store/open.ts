/**
 * Store selection: `file:<dir>` (the default, `file:./state`) or `postgres://…`/`postgresql://…`.
 * The PostgreSQL driver is loaded only when a postgres URL is used, so file-store commands start
 * as fast as before.
 */
import type { PostgresStoreOptions } from './postgres/store.js';
import { FileStore, type MigrationStore, type StoreOptions } from './store.js';

export const DEFAULT_STORE_URL = 'file:./state';

/** A --store / WABA_MIGRATE_STORE value that names no store we know (exit 2). */
export class StoreUrlError extends Error {
  override readonly name = 'StoreUrlError';
}

export type StoreKind = { kind: 'file'; dir: string } | { kind: 'postgres'; url: string };

export function parseStoreUrl(url: string): StoreKind {
  if (url.startsWith('file:')) {
    // file:<dir> (relative or absolute); file:///abs also accepted.
    let dir = url.slice('file:'.length);
    if (dir.startsWith('//')) dir = decodeURIComponent(new URL(url).pathname);
    if (!dir) throw new StoreUrlError(`--store: "file:" needs a directory, e.g. file:./state`);
    return { kind: 'file', dir };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    try {
      new URL(url);
    } catch {
      throw new StoreUrlError(`--store: the PostgreSQL URL is not valid; use postgres://user[:password]@host[:port]/database`);
    }
    return { kind: 'postgres', url };
  }
  const shown = url.replace(/\/\/[^@/]*@/, '//…@');
  throw new StoreUrlError(`--store: "${shown}" is not a store: use file:<dir> (default file:./state) or postgres://user@host:port/database`);
}

export async function openStore(url: string, options: StoreOptions & PostgresStoreOptions = {}): Promise<MigrationStore> {
  const s = parseStoreUrl(url);
  if (s.kind === 'file') return new FileStore(s.dir, options);
  const { PostgresStore } = await import('./postgres/store.js');
  return new PostgresStore(s.url, options);
}
