/** `waba-migrate store copy` between a state directory and PostgreSQL, both ways, via the real CLI. */
import { afterAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/store.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { MigrationEngine } from '../../src/runner/engine.js';
import { runCli } from '../helpers/cli.js';
import { FIXTURES, tempDir, world } from '../helpers/env.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../helpers/pg.js';

const dbs: TestDatabase[] = [];
afterAll(async () => {
  for (const d of dbs.splice(0)) await d.drop();
});

describe.skipIf(!pgAvailable)('store copy', () => {
  it('file → PostgreSQL → file: identical documents and histories, idempotent, refuses to overwrite a differing one (exit 2)', async () => {
    const w = await world();
    const db = await createTestDatabase('copy');
    dbs.push(db);
    try {
      const e = w.engine();
      const v = await e.start(w.startRequest({ id: 'a-done' }));
      await e.submitCode('a-done', w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
      await e.start(w.startRequest({ id: 'b-waiting', phone: '+16315552000' }));
      await e.start(w.startRequest({ id: 'c-blocked', phone: '+16315553000', confirm: [] }));
      await w.store.saveBatch({ schemaVersion: 1, id: 'batch1', createdAt: 'x', createdBy: 't', updatedAt: new Date().toISOString(), options: {}, rows: [], groupChecks: [], cancelled: null });

      const r1 = await runCli(['store', 'copy', '--from', `file:${w.dir}`, '--to', db.url, '--json']);
      expect(r1.stderr).toBe('');
      expect(r1.code).toBe(0);
      expect(JSON.parse(r1.stdout)).toMatchObject({ migrations: 3, copied: 3, unchanged: 0, batches: 1, batchesCopied: 1 });
      const pgs = new PostgresStore(db.url);
      for (const id of ['a-done', 'b-waiting', 'c-blocked']) expect(await pgs.load(id)).toEqual(await w.store.load(id));
      expect(await pgs.loadBatch('batch1')).toEqual(await w.store.loadBatch('batch1'));

      const r2 = await runCli(['store', 'copy', '--from', `file:${w.dir}`, '--to', db.url]);
      expect(r2.code).toBe(0);
      expect(r2.stdout).toMatch(/Copied 0 migrations \(3 already there, identical\)/);

      // The copy in PostgreSQL moves on; it continues there (reads and resumes via --store).
      const pe = new MigrationEngine({ store: pgs, token: FIXTURES.token, graphUrl: w.url, operator: 'tester' });
      const pv = await pe.get('b-waiting');
      const done = await pe.submitCode('b-waiting', w.sandbox.lastCodeFor(pv.phoneNumberId!)!.code, '123456');
      expect(done.state).toBe('completed');
      const st = await runCli(['status', 'b-waiting', '--json', '--store', db.url]);
      expect(JSON.parse(st.stdout).state).toBe('completed');
      const before = await db.sql('SELECT count(*)::int AS n FROM waba_migrate.history');

      // Now the file's b-waiting differs from PostgreSQL's: refused, naming it, nothing written.
      const r3 = await runCli(['store', 'copy', '--from', `file:${w.dir}`, '--to', db.url]);
      expect(r3.code).toBe(2);
      expect(r3.stderr).toMatch(/migration "b-waiting" already exists in postgres:\/\/\S+ with different content/);
      expect(await db.sql('SELECT count(*)::int AS n FROM waba_migrate.history')).toEqual(before);

      // And back, for a support escalation.
      const back = await tempDir('waba-back-');
      const r4 = await runCli(['store', 'copy', '--from', db.url, '--to', `file:${back}`]);
      expect(r4.code).toBe(0);
      const fs = new FileStore(back);
      for (const id of ['a-done', 'b-waiting', 'c-blocked']) expect(await fs.load(id)).toEqual(await pgs.load(id));
      expect((await fs.load('b-waiting')).state).toBe('completed');
      const l = await runCli(['list', '--json', '--state-dir', back]);
      expect(JSON.parse(l.stdout).map((x: { id: string }) => x.id)).toEqual(['a-done', 'b-waiting', 'c-blocked']);
      const none = await runCli(['store', 'copy', '--from', `file:${back}/nope`, '--to', db.url]);
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/no state directory at/);
      const bad = await runCli(['store', 'copy', '--from', `file:${back}`, '--to', 'mysql://x']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/is not a store: use file:<dir>/);
      await pgs.close();
    } finally {
      await w.close();
    }
  }, 60_000);

  it('list pages with --limit/--after on both stores', async () => {
    const w = await world();
    const db = await createTestDatabase('page');
    dbs.push(db);
    try {
      const e = w.engine();
      for (let i = 0; i < 5; i++) await e.start(w.startRequest({ id: `m${i}`, phone: `+1631555${4000 + i}`, confirm: [] }));
      await runCli(['store', 'copy', '--from', `file:${w.dir}`, '--to', db.url]);
      for (const store of [`file:${w.dir}`, db.url]) {
        const p = await runCli(['list', '--json', '--limit', '2', '--after', 'm1', '--store', store]);
        expect(JSON.parse(p.stdout).map((x: { id: string }) => x.id)).toEqual(['m2', 'm3']);
      }
      const bad = await runCli(['list', '--limit', 'x', '--store', db.url]);
      expect(bad.code).toBe(2);
      const both = await runCli(['list', '--store', db.url, '--state-dir', w.dir]);
      expect(both.code).toBe(2);
    } finally {
      await w.close();
    }
  }, 60_000);
});
