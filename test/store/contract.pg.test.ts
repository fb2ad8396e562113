/** The store contract against PostgresStore, on a database created for this run and dropped after. */
import { afterAll } from 'vitest';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../helpers/pg.js';
import { storeContract } from './contract.js';

const dbs: TestDatabase[] = [];
const urls = new WeakMap<object, string>();
afterAll(async () => {
  for (const d of dbs.splice(0)) await d.drop();
});

storeContract(
  'PostgresStore',
  {
    store: async () => {
      const db = await createTestDatabase('contract');
      dbs.push(db);
      // Two rows per query: every scan in the suite crosses pages (and ends on a full one).
      const s = new PostgresStore(db.url, { fsync: 'never', scanPageSize: 2 });
      urls.set(s, db.url);
      return s;
    },
    second: async (s) => {
      const other = new PostgresStore(urls.get(s)!, { fsync: 'never' });
      urls.set(other, urls.get(s)!);
      return other;
    },
    tamper: async (_s, id, edit) => {
      const db = dbs[dbs.length - 1]!;
      const [row] = await db.sql<{ doc: Record<string, unknown> }>('SELECT doc FROM waba_migrate.migrations WHERE id = $1', [id]);
      const hist = await db.sql<{ entry: unknown }>('SELECT entry FROM waba_migrate.history WHERE migration_id = $1 ORDER BY n', [id]);
      const doc = { ...row!.doc, history: hist.map((h) => h.entry) };
      edit(doc);
      const { history, ...body } = doc as { history: { n: number }[] } & Record<string, unknown>;
      await db.sql('UPDATE waba_migrate.migrations SET doc = $2 WHERE id = $1', [id, JSON.stringify(body)]);
      // History is append-only for everyone else: the test bypasses the trigger as the table owner would.
      await db.sql('ALTER TABLE waba_migrate.history DISABLE TRIGGER history_append_only');
      await db.sql('DELETE FROM waba_migrate.history WHERE migration_id = $1', [id]);
      let i = 0;
      for (const h of history) await db.sql('INSERT INTO waba_migrate.history (migration_id, n, entry) VALUES ($1, $2, $3)', [id, ++i, JSON.stringify(h)]);
      await db.sql('ALTER TABLE waba_migrate.history ENABLE TRIGGER history_append_only');
    },
    // The PostgreSQL lease is lost when its session ends: terminate the backend holding it.
    breakLease: async (_s, id) => {
      const db = dbs[dbs.length - 1]!;
      const { lockKey } = await import('../../src/store/postgres/keys.js');
      const k = lockKey('migration', id);
      for (const pid of await db.lockHolders(k)) await db.sql('SELECT pg_terminate_backend($1)', [pid]);
      // Let the server finish ending it (the lock is released as the backend exits). Waited for,
      // up to 10 s (a loaded server can take more than the 2 s this once allowed, after which it
      // went on silently with the lock still held); past that, say so.
      const t0 = Date.now();
      for (;;) {
        if (!(await db.lockHolders(k)).length) break;
        if (Date.now() - t0 > 10_000) throw new Error(`the terminated backend still holds ${id}'s lock after 10 s`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    cleanup: async () => {
      for (const d of dbs.splice(0)) await d.drop();
    },
  },
  { skip: !pgAvailable },
);
