/**
 * PostgreSQL for tests: the server named by WABA_MIGRATE_TEST_PG (default
 * postgres://root@127.0.0.1:5432/test). Each test file creates its own uniquely named database and
 * drops it afterwards. No server reachable: the suites are skipped with one loud line, except
 * under CI=true, where that is a failure.
 */
import pg from 'pg';

export const TEST_PG = process.env.WABA_MIGRATE_TEST_PG || 'postgres://root@127.0.0.1:5432/test';

async function reachable(): Promise<string | null> {
  const c = new pg.Client({ connectionString: TEST_PG, connectionTimeoutMillis: 3_000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await c.end().catch(() => {});
  }
}

const problem = await reachable();
if (problem && process.env.CI === 'true') throw new Error(`PostgreSQL tests: no server at ${TEST_PG} (${problem}) and CI=true: PostgreSQL is required in CI`);
if (problem)
  console.warn(
    `\n*** PostgreSQL tests SKIPPED: no server at ${TEST_PG} (${problem}). Run them with a PostgreSQL server on 127.0.0.1:5432 (trust auth, database test) or set WABA_MIGRATE_TEST_PG=postgres://user@host:port/db ***\n`,
  );

export const pgAvailable = problem === null;

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
  /** A query on the test database (as the admin role of TEST_PG). */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  /** The server processes holding advisory locks in this database (only this one: test files run
   *  in parallel, each in its own): those holding `key` (a lockKey()), or every holder. */
  lockHolders(key?: { classid: string | number; objid: string | number }): Promise<number[]>;
}

let seq = 0;

export async function createTestDatabase(tag = 't'): Promise<TestDatabase> {
  const name = `waba_${tag}_${process.pid}_${Date.now().toString(36)}_${++seq}`;
  const admin = new pg.Client({ connectionString: TEST_PG });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = withDatabase(TEST_PG, name);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {});
  return {
    url,
    name,
    sql: async (text, values = []) => (await pool.query(text, values)).rows,
    lockHolders: async (key) =>
      (
        await pool.query<{ pid: number }>(
          `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND ($1::oid IS NULL OR (classid = $1::oid AND objid = $2::oid))`,
          [key?.classid ?? null, key?.objid ?? null],
        )
      ).rows.map((r) => r.pid),
    drop: async () => {
      await pool.end().catch(() => {});
      const a = new pg.Client({ connectionString: TEST_PG });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}
