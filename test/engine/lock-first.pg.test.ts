/**
 * On a store whose locks leave nothing behind (PostgreSQL), `resume` takes its lock first and reads
 * the document once, under it (the file store reads before its lock file, then again under it).
 * `start` still refuses a taken id or a busy number with reads before its locks: it must not hold
 * another migration's or another number's lock, even for a moment. Bad input is refused with the
 * same errors, writing nothing, calling Meta for nothing, creating no schema and leaving no lock;
 * a refused lock is explained the way the reads would have.
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MigrationEngine } from '../../src/runner/engine.js';
import { FIXTURES, GraphSandbox } from '../../src/sandbox/index.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import type { Lease } from '../../src/store/store.js';
import { FAST_POLICY } from '../helpers/env.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../helpers/pg.js';

describe.skipIf(!pgAvailable)('a run on PostgreSQL takes its locks before it reads', () => {
  let db: TestDatabase;
  let sandbox: GraphSandbox;
  let url: string;
  let store: PostgresStore;
  /** Another process's store on the same database (its own sessions, so its own locks). */
  let other: PostgresStore;
  let calls: string[];
  const engine = (s: PostgresStore = store) =>
    new MigrationEngine({ store: s, token: FIXTURES.token, graphUrl: url, operator: 'tester', timeoutMs: 2_000, onCall: (c) => calls.push(`${c.method} ${c.path}`) });
  const request = (extra: Record<string, unknown> = {}) => ({ id: 'm1', phone: FIXTURES.phone, sourceWabaId: FIXTURES.sourceWabaId, destWabaId: FIXTURES.destWabaId, confirm: ['two_step_disabled'], policy: FAST_POLICY, ...extra });
  const rows = async () => (await db.sql<{ id: string; doc: string; n: number }>(`SELECT m.id, m.doc::text AS doc, (SELECT count(*)::int FROM waba_migrate.history h WHERE h.migration_id = m.id) AS n FROM waba_migrate.migrations m ORDER BY m.id`)).map((r) => JSON.stringify(r));

  beforeEach(async () => {
    db = await createTestDatabase('lockfirst');
    sandbox = new GraphSandbox();
    url = await sandbox.start();
    store = new PostgresStore(db.url, { fsync: 'never' });
    other = new PostgresStore(db.url, { fsync: 'never' });
    calls = [];
  });
  afterEach(async () => {
    await store.close();
    await other.close();
    await sandbox.stop();
    await db.drop();
  });

  it('submitCode sends no read before its lock and reads the document once; start reads before it locks', async () => {
    const sent: string[] = [];
    const query = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const c = args[0] as string | { text?: string };
      sent.push((typeof c === 'string' ? c : (c.text ?? '')).replace(/\s+/g, ' ').trim());
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    try {
      // The schema's set-up (the first write's) is not part of a run.
      await store.saveBatch({ schemaVersion: 1, id: 'warm-up', createdAt: new Date().toISOString(), createdBy: 't', updatedAt: new Date().toISOString(), options: {}, rows: [], groupChecks: [], cancelled: null });
      sent.length = 0;
      const v = await engine().start(request());
      expect(v.state).toBe('awaiting_code');
      // start: is the id taken? is the number busy? then the locks.
      expect(sent[0]).toMatch(/^SELECT 1 FROM waba_migrate\.migrations WHERE id = \$1/);
      expect(sent[1]).toMatch(/WHERE m\.phone = \$1/);
      expect(sent[2]).toMatch(/pg_try_advisory_lock/);
      const started = sent.splice(0);
      const done = await engine().submitCode('m1', sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
      expect(done.state).toBe('completed');
      expect(sent[0]).toMatch(/pg_try_advisory_lock/);
      // The document is read once (under the lock); the number's other migrations are asked for
      // without this one, and there are none.
      const loads = sent.filter((s) => /^SELECT m\.doc::text AS doc/.test(s));
      expect(loads).toHaveLength(1);
      const others = [...started, ...sent].filter((s) => /WHERE m\.phone = \$1/.test(s));
      expect(others).toHaveLength(3);
      expect(others.every((s) => /m\.id IS DISTINCT FROM \$2/.test(s))).toBe(true);
    } finally {
      pg.Client.prototype.query = query;
    }
  });

  it('a taken id is refused as a duplicate, unlocked or held by another process: nothing written, nothing sent, no lock left', async () => {
    const v = await engine().start(request());
    expect(v.state).toBe('awaiting_code');
    const before = await rows();
    calls = [];
    await expect(engine().start(request({ phone: '+16315552001' }))).rejects.toMatchObject({ name: 'DuplicateMigrationError' });
    const held: Lease = await other.lock('m1');
    try {
      await expect(engine().start(request({ phone: '+16315552001' }))).rejects.toMatchObject({ name: 'DuplicateMigrationError' });
    } finally {
      await held.release();
    }
    expect(await rows()).toEqual(before);
    expect(calls).toEqual([]);
    expect(await db.lockHolders()).toEqual([]);
  });

  it('a number with an unfinished migration is refused naming it, idle or running in another process', async () => {
    await engine().start(request({ id: 'first' }));
    const before = await rows();
    calls = [];
    await expect(engine().start(request({ id: 'second' }))).rejects.toMatchObject({ name: 'NumberBusyError', otherId: 'first' });
    // `first` running elsewhere: its process holds the number's lock.
    const held = await other.lock('first');
    const number = await other.lockNumber(FIXTURES.phone, { with: held });
    try {
      const err = await engine().start(request({ id: 'second' })).catch((e: Error) => e);
      expect(err).toMatchObject({ name: 'NumberBusyError', otherId: 'first' });
      expect((err as Error).message).toMatch(/already has an unfinished migration "first"/);
    } finally {
      await number.release();
      await held.release();
    }
    expect(await rows()).toEqual(before);
    expect(calls).toEqual([]);
    expect(await db.lockHolders()).toEqual([]);
  });

  it('resume of an unknown id on a database waba-migrate never used is not found, and creates nothing', async () => {
    await expect(engine().resume('nobody')).rejects.toMatchObject({ name: 'MigrationNotFoundError' });
    await expect(engine().submitCode('nobody', '123456', '123456')).rejects.toMatchObject({ name: 'MigrationNotFoundError' });
    expect(await db.sql(`SELECT nspname FROM pg_namespace WHERE nspname = 'waba_migrate'`)).toEqual([]);
    expect(calls).toEqual([]);
    expect(await db.lockHolders()).toEqual([]);
  });

  it('resume of a finished migration is a read even while another process holds its lock; an unknown id is not found', async () => {
    const v = await engine().start(request());
    await engine().submitCode('m1', sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
    const before = await rows();
    calls = [];
    expect((await engine().resume('m1')).state).toBe('completed');
    const held = await other.lock('m1');
    try {
      expect((await engine().resume('m1')).state).toBe('completed');
    } finally {
      await held.release();
    }
    await expect(engine().resume('nobody')).rejects.toMatchObject({ name: 'MigrationNotFoundError' });
    expect(await rows()).toEqual(before);
    expect(calls).toEqual([]);
    expect(await db.lockHolders()).toEqual([]);
  });

  it('a resend asked for too soon is refused under the lock, and explained while another process holds it', async () => {
    const v = await engine().start(request({ policy: { ...FAST_POLICY, resendCooldownMs: 60_000 } }));
    expect(v.state).toBe('awaiting_code');
    const before = await rows();
    calls = [];
    await expect(engine().resendCode('m1')).rejects.toMatchObject({ name: 'ResendTooSoonError' });
    const held = await other.lock('m1');
    try {
      await expect(engine().resendCode('m1')).rejects.toMatchObject({ name: 'ResendTooSoonError' });
      // Not too soon, but held: the lock's own refusal.
      await expect(engine().submitCode('m1', '000000', '123456')).rejects.toMatchObject({ name: 'MigrationLockedError' });
    } finally {
      await held.release();
    }
    expect(await rows()).toEqual(before);
    expect(calls).toEqual([]);
    expect(await db.lockHolders()).toEqual([]);
  });
});
