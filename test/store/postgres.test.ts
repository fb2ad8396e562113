/** What only PostgresStore has to prove: schema versions, database-enforced history, fenced writes, session-bound leases. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationLockLostError } from '../../src/store/lock.js';
import { StateDocumentError } from '../../src/store/document.js';
import { lockKey } from '../../src/store/postgres/keys.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { migrateSchema } from '../../src/store/postgres/schema.js';
import pg from 'pg';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, pgAvailable, TEST_PG, type TestDatabase } from '../helpers/pg.js';
import { entry, makeDoc } from './contract.js';

const dbs: TestDatabase[] = [];
afterAll(async () => {
  for (const d of dbs.splice(0)) await d.drop();
});
async function fresh(tag: string): Promise<TestDatabase> {
  const db = await createTestDatabase(tag);
  dbs.push(db);
  return db;
}

const STORE_JS = new URL('../../dist/src/store/postgres/store.js', import.meta.url).href;

describe.skipIf(!pgAvailable)('PostgresStore', () => {
  it('applies the schema once when several processes start at once; a newer schema is refused and left alone (exit 6)', async () => {
    const db = await fresh('schema');
    const stores = [0, 1, 2, 3].map(() => new PostgresStore(db.url, { fsync: 'never' }));
    await Promise.all(stores.map((s, i) => s.saveBatch({ schemaVersion: 1, id: `b${i}`, createdAt: 'x', createdBy: 't', updatedAt: new Date().toISOString(), options: {}, rows: [], groupChecks: [], cancelled: null })));
    for (const s of stores) await s.close();
    expect(await db.sql('SELECT version FROM waba_migrate.schema_version ORDER BY version')).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }]);
    await db.sql('INSERT INTO waba_migrate.schema_version (version) VALUES (99)');
    const s = new PostgresStore(db.url);
    const e = await s.listBatches().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StateDocumentError);
    expect((e as StateDocumentError).problem).toBe('unknown_schema');
    await s.close();
    const r = await runCli(['status', 'm1', '--store', db.url]);
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/schema version 99; this waba-migrate knows up to 4/);
    const w = await runCli(['cancel', 'm1', '--store', db.url]);
    expect(w.code).toBe(6);
    expect(await db.sql('SELECT version FROM waba_migrate.schema_version ORDER BY version')).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 99 }]);
  });

  it('upgrades a version-2 database (documents in jsonb) to the latest (3: json, kept as written; 4: shared throttles) on first write, documents intact', async () => {
    const db = await fresh('upgrade');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await migrateSchema(c, db.url, 2);
    const doc = makeDoc('u1');
    const { history, ...body } = doc;
    await c.query(`INSERT INTO waba_migrate.migrations (id, doc, state, phone, created_at, updated_at) VALUES ($1, $2::jsonb, $3, $4, now(), now())`, [doc.id, JSON.stringify(body), doc.state, doc.input.phone]);
    await c.query(`INSERT INTO waba_migrate.history (migration_id, n, entry) VALUES ($1, 1, $2::jsonb)`, [doc.id, JSON.stringify(history[0])]);
    const type = async () => (await c.query(`SELECT data_type FROM information_schema.columns WHERE table_schema = 'waba_migrate' AND table_name = 'migrations' AND column_name = 'doc'`)).rows[0].data_type;
    expect(await type()).toBe('jsonb');
    const s = new PostgresStore(db.url, { fsync: 'never' });
    expect(await s.load('u1')).toEqual(doc); // a reader reads version 2 as it is, and changes nothing
    expect(await type()).toBe('jsonb');
    const lease = await s.lock('u1'); // a lock is not a write: still as it was
    expect(await type()).toBe('jsonb');
    const h = await s.open('u1');
    h.data.history.push(entry(h.data, 'awaiting_code'));
    await h.save(); // the first write upgrades, then writes
    expect(await type()).toBe('json');
    expect((await s.load('u1')).history).toHaveLength(2);
    await lease.release();
    await s.close();
    expect((await c.query('SELECT version FROM waba_migrate.schema_version ORDER BY version')).rows.map((r) => r.version)).toEqual([1, 2, 3, 4]);
    await c.end();
  });

  it('reading an empty database creates nothing', async () => {
    const db = await fresh('empty');
    const r = await runCli(['list', '--store', db.url]);
    expect(r.code).toBe(0);
    expect(await db.sql(`SELECT 1 FROM pg_namespace WHERE nspname = 'waba_migrate'`)).toEqual([]);
  });

  it('the database itself refuses to change or delete a history entry', async () => {
    const db = await fresh('append');
    const s = new PostgresStore(db.url, { fsync: 'never' });
    const l = await s.lock('a1');
    await (await s.create(makeDoc('a1', { history: 2 }))).save();
    await l.release();
    await s.close();
    await expect(db.sql(`UPDATE waba_migrate.history SET entry = '{}' WHERE migration_id = 'a1'`)).rejects.toThrow(/append-only/);
    await expect(db.sql(`DELETE FROM waba_migrate.history WHERE migration_id = 'a1'`)).rejects.toThrow(/append-only/);
    await expect(db.sql(`INSERT INTO waba_migrate.history (migration_id, n, entry) VALUES ('a1', 2, '{}')`)).rejects.toThrow(/duplicate key/);
  });

  it('a write after the lease session ended fails (MigrationLockLostError) and lands nowhere; a write without the lease fails while another holds it', async () => {
    const db = await fresh('fence');
    const s = new PostgresStore(db.url, { fsync: 'never' });
    const lease = await s.lock('f1');
    const h = await s.create(makeDoc('f1'));
    await h.save();
    const k = lockKey('migration', 'f1');
    const [holder] = await db.lockHolders(k);
    await db.sql('SELECT pg_terminate_backend($1)', [holder!]);
    await new Promise((r) => setTimeout(r, 100));
    h.data.history.push(entry(h.data, 'awaiting_code'));
    await expect(h.save()).rejects.toBeInstanceOf(MigrationLockLostError);
    await expect(lease.assertHeld()).rejects.toBeInstanceOf(MigrationLockLostError);
    expect(await db.sql(`SELECT n FROM waba_migrate.history WHERE migration_id = 'f1'`)).toEqual([{ n: 1 }]);
    await lease.release();
    // Another process holds it now: this process's unleased handle may not write either.
    const other = new PostgresStore(db.url, { fsync: 'never' });
    const l2 = await other.lock('f1');
    const h2 = await s.open('f1');
    h2.data.history.push(entry(h2.data, 'awaiting_code'));
    await expect(h2.save()).rejects.toThrow(/in use by process/);
    expect(await db.sql(`SELECT n FROM waba_migrate.history WHERE migration_id = 'f1'`)).toEqual([{ n: 1 }]);
    await l2.release();
    await other.close();
    await s.close();
  });

  it('before a request, a session answered moments ago stands for the pg_locks check; an older proof is checked again and a lost session fails', async () => {
    const db = await fresh('fresh');
    const s = new PostgresStore(db.url, { fsync: 'never' });
    const m = await s.lock('q1');
    const n = await s.lockNumber('+16315551002', { with: m });
    const k = lockKey('migration', 'q1');
    const kn = lockKey('number', '+16315551002');
    const [pid] = await db.lockHolders(k);
    expect(await db.lockHolders(kn)).toEqual([pid]); // taken `with` the migration's lease: one session holds both
    // Round trips on the lease session show in pg_stat_activity: the last query it ran.
    const lastQuery = async () => (await db.sql<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = $1', [pid]))[0]!.query;
    await m.assertHeld(); // a full check: its query is the session's last
    expect(await lastQuery()).toMatch(/pg_locks/);
    const h = await s.create(makeDoc('q1'));
    await h.save(); // through the lease session
    expect(await lastQuery()).toMatch(/INSERT INTO waba_migrate\.migrations/);
    await m.assertHeld({ beforeRequest: true });
    await n.assertHeld({ beforeRequest: true });
    expect(await lastQuery()).toMatch(/INSERT INTO waba_migrate\.migrations/); // no round trip: the write proved both
    await new Promise((r) => setTimeout(r, 150)); // older than the 100 ms a proof stands for
    await n.assertHeld({ beforeRequest: true });
    expect(await lastQuery()).toMatch(/pg_locks/); // asked again
    await db.sql('SELECT pg_terminate_backend($1)', [pid]);
    await new Promise((r) => setTimeout(r, 150));
    await expect(m.assertHeld({ beforeRequest: true })).rejects.toBeInstanceOf(MigrationLockLostError);
    await expect(n.assertHeld({ beforeRequest: true })).rejects.toBeInstanceOf(MigrationLockLostError);
    await m.release();
    await n.release();
    await s.close();
  });

  it('a released lease session serves the next lease (no new connection); one cut while idle is replaced, not reported as a failed lock', async () => {
    const db = await fresh('idle');
    const s = new PostgresStore(db.url, { fsync: 'never' });
    const backendOf = (id: string) => db.lockHolders(lockKey('migration', id));
    const a = await s.lock('i1');
    const [first] = await backendOf('i1');
    await a.release();
    expect(await backendOf('i1')).toEqual([]); // released at once; only the connection stays
    const b = await s.lock('i2');
    expect(await backendOf('i2')).toEqual([first]);
    await b.release();
    // The idle session's server process is ended (an operator, a proxy, a network cut).
    await db.sql('SELECT pg_terminate_backend($1)', [first]);
    const c = await s.lock('i3');
    const [second] = await backendOf('i3');
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    await c.release();
    await s.close();
  });

  it('a migration’s and its number’s leases released together go in one statement, and both are free for another process', async () => {
    const db = await fresh('unlock');
    const s = new PostgresStore(db.url, { fsync: 'never' });
    const other = new PostgresStore(db.url, { fsync: 'never' });
    const m = await s.lock('u1');
    const n = await s.lockNumber('+16315551000', { with: m });
    const held = async () => (await db.lockHolders()).length;
    expect(await held()).toBe(2);
    const k = lockKey('migration', 'u1');
    const [pid] = await db.lockHolders(k);
    // Count what reaches the driver: one unlock statement for both leases.
    const sent: string[] = [];
    const query = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
      if (text?.includes('pg_advisory_unlock')) sent.push(text);
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    try {
      await Promise.all([n.release(), m.release()]);
    } finally {
      pg.Client.prototype.query = query;
    }
    expect(sent).toHaveLength(1);
    expect(await held()).toBe(0);
    expect((await db.sql<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = $1', [pid]))[0]!.query).toMatch(/pg_advisory_unlock\(k\) FROM unnest/);
    const m2 = await other.lock('u1');
    const n2 = await other.lockNumber('+16315551000', { with: m2 });
    await Promise.all([n2.release(), m2.release()]);
    await s.close();
    await other.close();
  });

  /** Ends this database's lease sessions and waits for their server processes to exit, with this
   *  process's event loop blocked meanwhile: the client has not read the goodbye yet, as after a
   *  network cut it has not noticed. */
  const cutSilently = (db: TestDatabase) => {
    const u = new URL(db.url);
    execFileSync('psql', ['-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username) || 'root', '-d', db.name, '-Atc', `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'wm %'`]);
  };

  it('an idle lease session cut before this process noticed: claims and concurrent locks go on, on a new session', async () => {
    const db = await fresh('cut');
    const s = new PostgresStore(db.url, { fsync: 'never' });
    await (await s.lock('a')).release(); // leaves an idle session
    cutSilently(db);
    expect(await s.claimDue(Date.now(), 1)).toEqual({ claimed: [], nextAt: null }); // a worker's pass, not an error
    await (await s.lock('b')).release();
    cutSilently(db);
    const rs = await Promise.allSettled([s.lock('x'), s.lock('y')]);
    for (const r of rs) if (r.status === 'fulfilled') await r.value.release();
    expect(rs.map((r) => (r.status === 'rejected' ? String((r.reason as Error).message) : 'ok'))).toEqual(['ok', 'ok']);
    await s.close();
  });

  it('close() while a lock is being taken: it is refused, and no lock or connection outlives close()', async () => {
    const db = await fresh('closing');
    const s = new PostgresStore(db.url, { fsync: 'never' });
    await (await s.lock('a')).release();
    const p = s.lock('z');
    await s.close();
    const r = await p.then((l) => l, (e: Error) => e);
    const k = lockKey('migration', 'z');
    const held = (await db.lockHolders(k)).length;
    if (!(r instanceof Error)) await r.release();
    expect({ result: r instanceof Error ? 'refused' : 'lease', held }).toEqual({ result: 'refused', held: 0 });
    await expect(s.lock('w')).rejects.toThrow(/was closed/);
    await expect(s.claimDue(Date.now(), 1)).rejects.toThrow(/was closed/);
  });

  it('a lease session left without a lease ends after leaseIdleMs', async () => {
    const db = await fresh('idleend');
    const s = new PostgresStore(db.url, { fsync: 'never', leaseIdleMs: 200 });
    const sessions = async () => (await db.sql<{ c: number }>(`SELECT count(*)::int AS c FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'wm %'`))[0]!.c;
    await (await s.lock('e1')).release();
    expect(await sessions()).toBe(1);
    const t0 = Date.now();
    while ((await sessions()) > 0) {
      // Waits for an event (the session's end), bounded: a session that never ends fails here.
      if (Date.now() - t0 > 10_000) throw new Error('the idle lease session is still open after 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    await s.close();
  });

  it('a process that released its leases and never closed the store exits at once (the idle session does not hold it)', async () => {
    const db = await fresh('exit');
    const script = `
      import { PostgresStore } from ${JSON.stringify(STORE_JS)};
      const s = new PostgresStore(${JSON.stringify(db.url)}, { fsync: 'never', leaseIdleMs: 20000 });
      const lease = await s.lock('e1');
      await lease.release();
      console.log('released ' + Date.now());
    `;
    const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    const exitedAt = Date.now();
    expect(code).toBe(0);
    const released = Number(/released (\d+)/.exec(out)?.[1]);
    // The session stays open 20 s for another lease; a process with nothing left to do must not wait for it.
    expect(exitedAt - released).toBeLessThan(10_000);
  }, 30_000);

  it('the connection string’s password never reaches output or errors', async () => {
    const u = new URL(TEST_PG);
    u.password = 'Sup3rSecretPw';
    const missing = new URL(u);
    missing.pathname = '/waba_no_such_db_x';
    const r = await runCli(['status', 'm1', '--store', missing.toString()]);
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).not.toContain('Sup3rSecretPw');
    expect(r.stderr).toMatch(/postgres:\/\/\S*@?127\.0\.0\.1:5432\/waba_no_such_db_x/);
    const db = await fresh('pw');
    const withPw = new URL(db.url);
    withPw.password = 'Sup3rSecretPw';
    const l = await runCli(['list', '--store', withPw.toString()]);
    expect(l.stdout + l.stderr).not.toContain('Sup3rSecretPw');
    expect(new PostgresStore(withPw.toString()).where).not.toContain('Sup3rSecretPw');
  });

  /**
   * A holder frozen by SIGSTOP: its session is ended (by the test, as an operator or the server's
   * timeout would), another process takes over, and when the frozen one wakes it writes nothing
   * and sends nothing more. The child prints "post <k>" only after assertHeld() passed (the gate
   * before every POST) and "saved <k>" after a write.
   */
  for (const how of ['pg_terminate_backend', 'idle_session_timeout'] as const) {
    it(`a SIGSTOPped holder that lost its session (${how}) never writes or posts again`, async () => {
      const db = await fresh('stop');
      const s = new PostgresStore(db.url, { fsync: 'never' });
      const l0 = await s.lock('s1');
      await (await s.create(makeDoc('s1', { state: 'checking' }))).save();
      await l0.release();
      const script = `
        import { PostgresStore } from ${JSON.stringify(STORE_JS)};
        const s = new PostgresStore(${JSON.stringify(db.url)}, { fsync: 'never', leaseTimeoutMs: 1200 });
        const lease = await s.lock('s1');
        const h = await s.open('s1');
        for (let k = 1; ; k++) {
          try {
            await lease.assertHeld();
            console.log('post ' + k);
            const d = h.data;
            d.history.push({ n: d.history.length + 1, at: new Date().toISOString(), from: d.state, to: d.state, event: { type: 'child' }, calls: [], by: 'child' });
            await h.save();
            console.log('saved ' + k);
          } catch (e) {
            console.log('stopped ' + e.name);
            process.exit(5);
          }
          await new Promise((r) => setTimeout(r, 150));
        }`;
      const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      const until = async (cond: () => boolean, ms = 10_000) => {
        const t0 = Date.now();
        while (!cond()) {
          if (Date.now() - t0 > ms) throw new Error(`timed out; child said: ${out}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      await until(() => /saved 3\n/.test(out));
      child.kill('SIGSTOP');
      // What it wrote before it froze is everything before the cut: wait until it is really
      // stopped (the signal is asynchronous), then for one poll phase of our loop, which reads
      // all that is in the pipe (a fixed 20 ms could miss a line a loaded machine read later).
      await until(() => readFileSync(`/proc/${child.pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('T'));
      for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
      const frozenOut = out;
      const k = lockKey('migration', 's1');
      if (how === 'pg_terminate_backend') {
        const rows = await db.lockHolders(k);
        expect(rows.length).toBe(1);
        await db.sql('SELECT pg_terminate_backend($1)', [rows[0]!]);
      }
      // Another process takes over as soon as the server has ended the frozen session.
      let lease2 = null;
      const t0 = Date.now();
      while (!lease2) {
        lease2 = await s.lock('s1').catch(() => null);
        if (!lease2) await new Promise((r) => setTimeout(r, 50));
        if (Date.now() - t0 > 10_000) throw new Error('the frozen holder kept the lock');
      }
      const h2 = await s.open('s1');
      const takenAt = h2.data.history.length;
      h2.data.history.push({ ...entry(h2.data, 'checking'), by: 'successor' });
      await h2.save();
      child.kill('SIGCONT');
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      expect(code).toBe(5);
      const after = out.slice(frozenOut.length);
      expect(after).not.toMatch(/post|saved/);
      expect(after).toMatch(/stopped MigrationLockLostError/);
      const hist = await db.sql<{ n: number; by: string }>(`SELECT n, entry->>'by' AS by FROM waba_migrate.history WHERE migration_id = 's1' ORDER BY n`);
      expect(hist.filter((x) => x.by === 'child' && x.n > takenAt)).toEqual([]);
      expect(hist.map((x) => x.n)).toEqual(hist.map((_x, i) => i + 1));
      expect(hist[hist.length - 1]!.by).toBe('successor');
      await lease2.release();
      await s.close();
    }, 30_000);
  }
});
