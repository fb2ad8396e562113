/** The engine flow suite (flows.test.ts) run unchanged on PostgresStore: one database per world. */
import { PostgresStore } from '../../src/store/postgres/store.js';
import { setWorldStore } from '../helpers/env.js';
import { createTestDatabase, pgAvailable } from '../helpers/pg.js';
import { describe, it } from 'vitest';

if (pgAvailable) {
  setWorldStore(async () => {
    const db = await createTestDatabase('flows');
    const store = new PostgresStore(db.url, { fsync: 'never' });
    return {
      store,
      raw: async (id) => {
        const rows = await db.sql<{ t: string }>(
          `SELECT doc::text AS t FROM waba_migrate.migrations WHERE id = $1 UNION ALL SELECT entry::text FROM waba_migrate.history WHERE migration_id = $1`,
          [id],
        );
        return rows.map((r) => r.t).join('\n');
      },
      dispose: async () => {
        await store.close();
        await db.drop();
      },
    };
  });
  await import('./flows.test.js');
} else {
  describe.skip('engine flows on PostgreSQL (no server)', () => it('skipped', () => {}));
}
