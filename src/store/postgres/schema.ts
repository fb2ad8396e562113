/**
 * The PostgreSQL schema, as numbered steps applied in order. Every step runs in one transaction
 * under a transaction-scoped advisory lock, so two processes starting at once apply it once; a
 * database already at the latest version is only read. A database whose version is newer than
 * this code knows was written by a newer waba-migrate: it is refused (exit 6), never altered.
 */
import type pg from 'pg';
import { StateDocumentError } from '../document.js';
import { lockKey } from './keys.js';

/** Everything lives in its own PostgreSQL schema, so the database can be shared with other apps. */
export const SCHEMA = 'waba_migrate';

const STEPS: string[] = [
  // 1: migrations, their append-only history, batches.
  `
  CREATE SCHEMA IF NOT EXISTS ${SCHEMA};
  CREATE TABLE ${SCHEMA}.migrations (
    -- "C" collation: byte order, the order the file store lists ids in, and keyset paging on the key.
    id text COLLATE "C" PRIMARY KEY,
    -- The document without its history (which is in ${SCHEMA}.history, one row per entry).
    doc jsonb NOT NULL,
    state text NOT NULL,
    phone text NOT NULL,
    batch text,
    -- When a worker may move it (ms since epoch), from dueOf(); null when it needs a person or is over.
    due_at bigint,
    hold text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
  );
  CREATE INDEX migrations_state ON ${SCHEMA}.migrations (state);
  CREATE INDEX migrations_phone ON ${SCHEMA}.migrations (phone);
  CREATE INDEX migrations_batch ON ${SCHEMA}.migrations (batch) WHERE batch IS NOT NULL;
  CREATE INDEX migrations_due ON ${SCHEMA}.migrations (due_at, id) WHERE due_at IS NOT NULL;
  CREATE INDEX migrations_updated ON ${SCHEMA}.migrations (updated_at);
  CREATE TABLE ${SCHEMA}.history (
    migration_id text COLLATE "C" NOT NULL REFERENCES ${SCHEMA}.migrations (id),
    n integer NOT NULL CHECK (n >= 1),
    entry jsonb NOT NULL,
    PRIMARY KEY (migration_id, n)
  );
  -- The audit trail is append-only: the database itself refuses to change or remove an entry.
  CREATE FUNCTION ${SCHEMA}.history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    RAISE EXCEPTION 'waba_migrate.history is append-only (% refused)', TG_OP;
  END $$;
  CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON ${SCHEMA}.history
    FOR EACH ROW EXECUTE FUNCTION ${SCHEMA}.history_append_only();
  CREATE TABLE ${SCHEMA}.batches (
    id text COLLATE "C" PRIMARY KEY,
    record jsonb NOT NULL,
    updated_at timestamptz NOT NULL
  );
  `,
  // 2: notification endpoints a receiver disabled with 410 Gone (by URL hash; never the URL).
  `
  CREATE TABLE ${SCHEMA}.disabled_endpoints (
    key text COLLATE "C" PRIMARY KEY CHECK (key ~ '^[0-9a-f]{64}$'),
    endpoint text NOT NULL,
    disabled_at timestamptz NOT NULL,
    event_id text NOT NULL,
    owner text
  );
  `,
  // 3: documents kept as written (json, not jsonb) and inline without compression up to a page:
  // reading a document back is then a copy, not a re-serialisation of jsonb plus a decompression
  // (which were most of the server's time in a full listing, P3). Nothing queries inside a
  // document: every field a query needs is a column of its own.
  `
  ALTER TABLE ${SCHEMA}.migrations SET (toast_tuple_target = 8160);
  ALTER TABLE ${SCHEMA}.migrations ALTER COLUMN doc TYPE json USING doc::json;
  `,
  // 4: WABAs Meta throttled, shared by every process (a worker's 80007 pauses the others too).
  `
  CREATE TABLE ${SCHEMA}.throttles (
    key text COLLATE "C" PRIMARY KEY CHECK (key ~ '^[0-9]{1,32}$'),
    until_ms bigint NOT NULL,
    code integer
  );
  `,
];

export const SCHEMA_LATEST = STEPS.length;

/** The version a database is at (0: never used by waba-migrate). Reads only. */
export async function schemaVersion(client: pg.PoolClient | pg.Client): Promise<number> {
  const r = await client.query<{ reg: string | null }>(`SELECT to_regclass('${SCHEMA}.schema_version')::text AS reg`);
  if (!r.rows[0]?.reg) return 0;
  const v = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${SCHEMA}.schema_version`);
  return v.rows[0]?.v ?? 0;
}

export function refuseNewer(version: number, where: string): void {
  if (version > SCHEMA_LATEST)
    throw new StateDocumentError(
      'unknown_schema',
      where,
      `${where} has waba-migrate schema version ${version}; this waba-migrate knows up to ${SCHEMA_LATEST}. Upgrade waba-migrate; the database was left untouched.`,
    );
}

/** Brings the database to the latest version (idempotent; safe from many processes at once).
 *  `target`: stop at that version (tests build an older database with it). */
export async function migrateSchema(client: pg.PoolClient | pg.Client, where: string, target = SCHEMA_LATEST): Promise<void> {
  refuseNewer(await schemaVersion(client), where);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [lockKey('schema', SCHEMA).key]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${SCHEMA}.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const current = await schemaVersion(client); // again, under the lock
    refuseNewer(current, where);
    for (let v = current + 1; v <= Math.min(target, SCHEMA_LATEST); v++) {
      await client.query(STEPS[v - 1]!);
      await client.query(`INSERT INTO ${SCHEMA}.schema_version (version) VALUES ($1)`, [v]);
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  }
}
