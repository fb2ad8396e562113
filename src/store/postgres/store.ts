/**
 * PostgresStore: the MigrationStore contract on PostgreSQL, for several operators and workers on
 * several hosts sharing one database.
 *
 * Driver: `pg` (node-postgres) 8.x: the most used and maintained PostgreSQL client for Node, with
 * a pool, LISTEN/NOTIFY on a plain client, and per-connection session settings. Ownership here is
 * a *session* (see below), and pg lets us hold one connection for as long as a lease lasts; the
 * `postgres` 3.x driver multiplexes queries over connections it chooses, which hides the session.
 *
 * Layout (schema.ts): one row per migration (the document without its history as json, kept as written, plus the
 * columns queries need: state, phone, batch, due_at, hold, updated_at), one row per history entry
 * (append-only: a trigger refuses UPDATE and DELETE), one row per batch.
 *
 * Ownership: `lock`, `lockNumber` and `lockBatch` take `pg_try_advisory_lock(key)` on a lease
 * session: one of a few connections (up to 4, 8 leases each) this process keeps while it holds
 * leases and `leaseIdleMs` after. The server releases the locks when the session ends (process
 * killed, host gone, network cut, session terminated), so nothing is ever judged stale by a
 * clock here. Every write of a migration whose lease this process holds goes through that lease's
 * session: when the session is gone the write fails, it cannot land beside the new owner.
 * A process that is stopped (SIGSTOP, a VM paused) keeps its TCP connection, and by default its
 * leases: like the file store's kernel locks, ownership changes only when the holder's session
 * dies. That is deliberate. Taking a lease from a paused holder (`leaseTimeoutMs`, opt-in: the
 * server ends a session that stopped pinging) cannot stop the paused holder from sending the POST
 * it had already checked ownership for: Meta offers no fencing token, so the new owner's
 * reconciliation can run before the old owner's request lands. The multi-worker chaos test saw
 * exactly that (3 double registers in 100 migrations with a 1.5 s lease and 2–3.5 s SIGSTOPs).
 * With the timeout set, a woken holder's next write or `assertHeld()` still fails
 * (MigrationLockLostError), so it cannot write after the loss; only that one in-flight window
 * remains.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import { BatchNotFoundError, dueOf, parseStoredJson, StateDocumentError, validateBatch, validateDisabledEndpoint, validateDocument, type BatchRecord, type DisabledEndpoint, type DueMigration, type HistoryEntry, type MigrationDocument } from '../document.js';
import { MigrationLockedError, MigrationLockLostError, type Lease, type LockOwner } from '../lock.js';
import { checkThrottle, THROTTLE_KEEP_MS, DuplicateMigrationError, ID_PATTERN, MigrationNotFoundError, phoneDigits, type StoredThrottle, type ByPhoneOptions, type Claim, type ClaimOptions, type DocumentHandle, type ListedMigration, type MigrationStore, type ScanOptions, type StoreOptions } from '../store.js';
import { lockKey, type LockKey } from './keys.js';
import { migrateSchema, refuseNewer, schemaVersion, SCHEMA, SCHEMA_LATEST } from './schema.js';

export interface PostgresStoreOptions extends StoreOptions {
  /** Connections for queries (default 5); leases get their own few sessions beside these. */
  poolSize?: number;
  /** Connections holding this process's leases (default 4; up to 8 leases share one). */
  leaseSessions?: number;
  /**
   * Opt-in: how long the server keeps the session of a holder that has gone silent (stopped,
   * frozen) before ending it and freeing its locks; a live holder pings every quarter of it.
   * Default 0: never (a stopped holder keeps its leases until it dies or its connection is cut,
   * which TCP keepalives detect in about 25 s). See the class comment for why.
   */
  leaseTimeoutMs?: number;
  /** Rows per query when scanning (default 2000); each row is mapped as it arrives either way. */
  scanPageSize?: number;
  /** How long a lease session with no lease left stays open for the next one (ms, default 2000). */
  leaseIdleMs?: number;
}

/** The server could not be reached or refused us; the message never carries the password. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}

const CHANNEL = 'waba_migrate_changes';

/** `postgres://user@host:port/db`: what messages and `where` show (never the password). */
export function describePostgresUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'postgres://(unparsable url)';
  }
  const user = u.username ? `${decodeURIComponent(u.username)}@` : '';
  return `postgres://${user}${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname || '/'}`;
}

/** Leases per session before another session is opened (up to PostgresStoreOptions.leaseSessions). */
const LEASES_PER_SESSION = 8;
/** Every advisory lock granted in this database right now (pg_locks), as a CTE named `held`. */
const HELD_CTE = `held AS MATERIALIZED (
  SELECT l.classid, l.objid FROM pg_locks l
   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`;
/** lockKey('migration', id) in SQL: the first 8 bytes of sha256("migration:<id>") as a bigint. */
const MIGRATION_KEY_SQL = `('x' || substr(encode(sha256(convert_to('migration:' || id, 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint`;
/** True when no session holds the bigint key `k` (pg_locks shows it split into classid/objid). */
const notHeld = (k: string) => `NOT EXISTS (SELECT 1 FROM held WHERE held.classid = ((${k} >> 32) & 4294967295)::oid AND held.objid = (${k} & 4294967295)::oid)`;
/** claimDue's filters: the batch ($batch, null = any) and PIN-held rows only with $pin = true. */
const claimFilter = (batch: number, pin: number) => `($${batch}::text IS NULL OR batch = $${batch}) AND (hold IS NULL OR $${pin}::boolean)`;
/**
 * How long a lease session that holds no lease stays open for the next one (ms). Opening one costs
 * a connection (a server process, authentication, and the statements it has prepared): about 2.5
 * ms before the first lock and again at the end of every run when each run opened and ended its own.
 */
const SESSION_IDLE_MS = 2000;
/** A lease session's answer this recent stands for a pg_locks check before a request (ms). */
const FRESH_MS = 100;

/** Statement names by text: see prepared(). */
const statementNames = new Map<string, string>();
/**
 * A query as a named prepared statement: every statement this store sends is one of a few fixed
 * texts (values go in $n parameters), and each runs once or more per transition. Unnamed, the
 * server parses and plans it on every call; named, once per connection (pg keeps the names it has
 * prepared on each connection). The name is derived from the text, so one name never means two texts.
 */
function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `waba_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

interface LeaseSession {
  client: pg.Client;
  /** One query at a time on this connection, in call order (leases of several migrations share it;
   *  pg 8 warns that queueing concurrent queries on one client is deprecated). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Releases one lock on this session; releases asked for in the same tick share one statement. */
  unlock(key: string): Promise<void>;
  lost: Error | null;
  closing: boolean;
  leases: number;
  ready: Promise<void>;
  ping: NodeJS.Timeout | null;
  /** Set while the session holds no lease: ends it unless a lease comes first (SESSION_IDLE_MS). */
  idle: NodeJS.Timeout | null;
  /** performance.now() at which the latest query that then succeeded was sent: the server
   *  answered it after that moment, so the session (and every lock on it) was alive then. */
  provenAt: number;
  /** Date.now() at the same moment. */
  provenWallAt: number;
}

interface Held {
  query: LeaseSession['query'];
  lost: () => Error | null;
}

export class PostgresStore implements MigrationStore {
  /** Advisory locks: the server forgets them with their session; nothing is written. */
  readonly ephemeralLocks = true;
  readonly where: string;
  readonly #url: string;
  readonly #password: string;
  readonly #pool: pg.Pool;
  readonly #sessionConfig: pg.ClientConfig;
  readonly #maxSessions: number;
  #sessions: LeaseSession[] = [];
  /** Keys this process holds (or is taking): key → owner. */
  readonly #localKeys = new Map<string, LockOwner>();
  readonly #fsync: NonNullable<StoreOptions['fsync']>;
  readonly #leaseTimeoutMs: number;
  /** Migration id → the lease connection this process holds for it (writes go through it). */
  readonly #held = new Map<string, Held>();
  /** Each live lease's session (for lockNumber's `with`). */
  readonly #leaseSessions = new WeakMap<Lease, LeaseSession>();
  /** How recent a session's last answered query must be to stand for a pg_locks check. */
  readonly #freshMs: number;
  readonly #scanPage: number;
  readonly #leaseIdleMs: number;
  #schema: Promise<number> | null = null;
  #migrated: Promise<void> | null = null;
  #listener: pg.Client | null = null;
  #listening: Promise<void> | null = null;
  /** Set by close(): no lock, claim or lease session after it. */
  #closed = false;
  readonly #watchers = new Set<(id: string) => void>();

  constructor(url: string, options: PostgresStoreOptions = {}) {
    this.#url = url;
    this.where = describePostgresUrl(url);
    try {
      this.#password = decodeURIComponent(new URL(url).password);
    } catch {
      this.#password = '';
    }
    this.#fsync = options.fsync ?? 'barriers';
    this.#leaseTimeoutMs = options.leaseTimeoutMs ?? 0;
    this.#scanPage = Math.max(1, options.scanPageSize ?? 2000);
    this.#leaseIdleMs = Math.max(0, options.leaseIdleMs ?? SESSION_IDLE_MS);
    this.#freshMs = this.#leaseTimeoutMs > 0 ? Math.min(FRESH_MS, this.#leaseTimeoutMs / 4) : FRESH_MS;
    const app = `waba-migrate ${process.pid}@${hostname()}`.slice(0, 63);
    // A session stopped inside a transaction must not keep rows locked forever; keepalives let the
    // server notice a vanished host. `synchronous_commit=off` only under fsync: 'never'.
    const gucs = [
      '-c idle_in_transaction_session_timeout=30000',
      '-c tcp_keepalives_idle=10',
      '-c tcp_keepalives_interval=5',
      '-c tcp_keepalives_count=3',
      ...(this.#fsync === 'never' ? ['-c synchronous_commit=off'] : []),
    ];
    const base = { connectionString: url, application_name: app, keepAlive: true, allowExitOnIdle: true, connectionTimeoutMillis: 10_000 };
    this.#pool = new pg.Pool({ ...base, max: options.poolSize ?? 5, idleTimeoutMillis: 10_000, options: gucs.join(' ') });
    this.#maxSessions = options.leaseSessions ?? 4;
    this.#sessionConfig = { connectionString: url, application_name: app, keepAlive: true, connectionTimeoutMillis: 10_000, options: [...gucs, ...(this.#leaseTimeoutMs > 0 ? [`-c idle_session_timeout=${this.#leaseTimeoutMs}`] : [])].join(' ') };
    // An idle pooled connection the server ends is dropped by the pool; without a listener the
    // 'error' event would crash the process.
    this.#pool.on('error', () => {});
  }

  /** Error text without the connection string's password. */
  #scrub(e: unknown): Error {
    if (!(e instanceof Error)) return new Error(String(e));
    if (this.#password && e.message.includes(this.#password)) e.message = e.message.split(this.#password).join('***');
    return e;
  }

  async #connect(pool: pg.Pool): Promise<pg.PoolClient> {
    try {
      return await pool.connect();
    } catch (e) {
      const err = this.#scrub(e);
      throw new StoreUnavailableError(`cannot use PostgreSQL at ${this.where}: ${err.message}. Check --store / WABA_MIGRATE_STORE and that the server is running`);
    }
  }

  async #query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    const c = await this.#connect(this.#pool);
    try {
      return await c.query<R>(prepared(text, values));
    } catch (e) {
      throw this.#scrub(e);
    } finally {
      c.release();
    }
  }

  /** The schema version in the database (0: never used); refuses a newer one. Reads only. */
  #version(): Promise<number> {
    this.#schema ??= (async () => {
      const c = await this.#connect(this.#pool);
      try {
        const v = await schemaVersion(c);
        refuseNewer(v, this.where);
        return v;
      } finally {
        c.release();
      }
    })().catch((e) => {
      this.#schema = null;
      throw e;
    });
    const got = this.#schema;
    // "No tables yet" is not remembered: another process may create them any moment.
    void got.then((v) => {
      if (v === 0 && this.#schema === got) this.#schema = null;
    }, () => {});
    return got;
  }

  /** For writers: the schema, created or upgraded on first use. */
  #ready(): Promise<void> {
    this.#migrated ??= (async () => {
      if ((await this.#version()) === SCHEMA_LATEST) return;
      const c = await this.#connect(this.#pool);
      try {
        await migrateSchema(c, this.where);
      } finally {
        c.release();
      }
      this.#schema = Promise.resolve(SCHEMA_LATEST);
    })().catch((e) => {
      this.#migrated = null;
      throw this.#scrub(e);
    });
    return this.#migrated;
  }

  /** Readers: false when the database has no waba-migrate tables yet (nothing to read). */
  async #readable(): Promise<boolean> {
    return (await this.#version()) > 0;
  }

  #name(id: string): string {
    return `${this.where}#${id}`;
  }

  #checkId(id: string, what = 'migration'): void {
    if (!ID_PATTERN.test(id)) throw new Error(`${what} id "${id}" is not valid: use 1-64 letters, digits, '.', '_' or '-'`);
  }

  async exists(id: string): Promise<boolean> {
    this.#checkId(id);
    if (!(await this.#readable())) return false;
    const r = await this.#query(`SELECT 1 FROM ${SCHEMA}.migrations WHERE id = $1`, [id]);
    return r.rowCount === 1;
  }

  #assemble(id: string, docText: string, historyText: string): MigrationDocument {
    const where = this.#name(id);
    const raw = parseStoredJson(docText, where) as Record<string, unknown>;
    const history = parseStoredJson(historyText, where) as HistoryEntry[];
    history.forEach((h, i) => {
      if (h?.n !== i + 1) throw new StateDocumentError('invalid', where, `${where}: history entry ${i + 1} is numbered ${String(h?.n)} (a gap or a duplicate); it was left untouched.`);
    });
    return validateDocument({ ...raw, history }, where, id);
  }

  async load(id: string): Promise<MigrationDocument> {
    this.#checkId(id);
    if (!(await this.#readable())) throw new MigrationNotFoundError(id);
    const r = await this.#query<{ doc: string; history: string }>(
      `SELECT m.doc::text AS doc,
              (SELECT coalesce(jsonb_agg(h.entry ORDER BY h.n), '[]'::jsonb)::text FROM ${SCHEMA}.history h WHERE h.migration_id = m.id) AS history
         FROM ${SCHEMA}.migrations m WHERE m.id = $1`,
      [id],
    );
    const row = r.rows[0];
    if (!row) throw new MigrationNotFoundError(id);
    return this.#assemble(id, row.doc, row.history);
  }

  async open(id: string): Promise<DocumentHandle> {
    const doc = await this.load(id);
    return this.#handle(doc, false);
  }

  async create(doc: MigrationDocument): Promise<DocumentHandle> {
    this.#checkId(doc.id);
    await this.#ready();
    if (await this.exists(doc.id)) throw new DuplicateMigrationError(doc.id);
    return this.#handle(doc, true);
  }

  /**
   * One save = one statement = one transaction: the document row (insert or update) and only
   * the history entries not yet stored, plus the NOTIFY for watchers (sent at commit). Written
   * through the lease connection when this process holds the migration's lease; otherwise
   * through a pooled one that must take the migration's lock for the transaction
   * (`pg_try_advisory_xact_lock`), so a write never lands while another process holds it.
   */
  #handle(doc: MigrationDocument, isNew: boolean): DocumentHandle {
    let fresh = isNew;
    let stored = isNew ? 0 : doc.history.length;
    const key = lockKey('migration', doc.id);
    const policy = this.#fsync;
    return {
      data: doc,
      save: async (options = {}) => {
        await this.#ready(); // once per process: the schema, created or upgraded before the first write
        const durable = policy === 'always' || (policy === 'barriers' && options.durable === true);
        const entries = doc.history.slice(stored);
        entries.forEach((h, i) => {
          if (h.n !== stored + i + 1) throw new Error(`history entry ${stored + i + 1} of ${doc.id} is numbered ${h.n}: history must be gap-free`);
        });
        const { history: _h, ...body } = doc;
        void _h;
        const due = dueOf(doc);
        const held = this.#held.get(doc.id);
        const lost = held?.lost();
        if (lost) throw new MigrationLockLostError(doc.id, `the PostgreSQL session holding it ended: ${this.#scrub(lost).message}`);
        const write = fresh
          ? `INSERT INTO ${SCHEMA}.migrations (id, doc, state, phone, batch, due_at, hold, created_at, updated_at)
               SELECT $1, $2::json, $3, $4, $5, $6, $7, $11::timestamptz, $8::timestamptz WHERE (SELECT ok FROM fence)
               ON CONFLICT (id) DO NOTHING RETURNING id`
          : `UPDATE ${SCHEMA}.migrations SET doc = $2::json, state = $3, phone = $4, batch = $5, due_at = $6, hold = $7, created_at = $11::timestamptz, updated_at = $8::timestamptz
               WHERE id = $1 AND (SELECT ok FROM fence) RETURNING id`;
        const sql = `WITH fence AS (SELECT CASE WHEN $10::boolean THEN pg_try_advisory_xact_lock($12::bigint) ELSE true END AS ok),
          w AS (${write}),
          h AS (INSERT INTO ${SCHEMA}.history (migration_id, n, entry)
                SELECT $1, (e->>'n')::int, e FROM jsonb_array_elements($9::jsonb) e WHERE EXISTS (SELECT 1 FROM w) RETURNING n)
          SELECT (SELECT ok FROM fence) AS fenced, (SELECT count(*) FROM w)::int AS written, (SELECT count(*) FROM h)::int AS added,
                 set_config('synchronous_commit', $13, true) AS sync, (SELECT pg_notify('${CHANNEL}', $1) FROM w) AS notified`;
        const values = [
          doc.id,
          JSON.stringify(body),
          doc.state,
          doc.input.phone,
          (doc as { batch?: string | null }).batch ?? null,
          due ? due.dueAt : null,
          due ? due.hold : null,
          doc.updatedAt,
          JSON.stringify(entries),
          held === undefined,
          doc.createdAt,
          key.key,
          durable ? 'on' : 'off',
        ];
        let row: { fenced: boolean; written: number; added: number };
        if (held) {
          try {
            row = (await held.query<typeof row>(sql, values)).rows[0]!;
          } catch (e) {
            const gone = held.lost();
            if (gone || isConnectionError(e)) throw new MigrationLockLostError(doc.id, `the PostgreSQL session holding it ended: ${this.#scrub(gone ?? e).message}`);
            throw this.#scrub(e);
          }
        } else {
          row = (await this.#query<typeof row>(sql, values)).rows[0]!;
          if (!row.fenced) throw new MigrationLockedError(doc.id, await this.holder(doc.id));
        }
        if (row.written !== 1) {
          if (fresh) throw new DuplicateMigrationError(doc.id);
          throw new MigrationNotFoundError(doc.id);
        }
        if (row.added !== entries.length) throw new Error(`saving ${doc.id}: ${row.added} of ${entries.length} history entries written`);
        fresh = false;
        stored += entries.length;
      },
    };
  }

  // ---- ownership -----------------------------------------------------------------------------

  /**
   * A lease session: one connection holding several of this process's advisory locks. Sharing a
   * few sessions keeps connections bounded (PostgreSQL's max_connections is shared by every
   * worker); losing a session loses exactly the leases on it, which is what they mean. A session
   * whose last lease is released stays open `leaseIdleMs` (2 s) for the next run's leases, then ends;
   * while it holds none it does not keep the process alive, and close() ends it at once.
   */
  #session(near?: LeaseSession): LeaseSession {
    // Synchronous on purpose: picking a session and counting the lease on it happen in one step,
    // so a concurrent release cannot end the session in between.
    const take = (x: LeaseSession) => {
      if (x.idle) {
        clearTimeout(x.idle);
        x.idle = null;
        refs(x.client).ref();
      }
      x.leases++;
      return x;
    };
    if (near && !near.lost && !near.closing) return take(near);
    const live = this.#sessions.filter((x) => !x.lost && !x.closing);
    const pick = live.filter((x) => x.leases < LEASES_PER_SESSION).sort((a, b) => a.leases - b.leases)[0] ?? (live.length >= this.#maxSessions ? live.sort((a, b) => a.leases - b.leases)[0] : undefined);
    if (pick) return take(pick);
    const client = new pg.Client({ ...this.#sessionConfig });
    let chain: Promise<unknown> = Promise.resolve();
    let unlocking: { keys: string[]; done: Promise<void> } | null = null;
    const session: LeaseSession = {
      client,
      lost: null,
      closing: false,
      leases: 1,
      ready: Promise.resolve(),
      ping: null,
      idle: null,
      provenAt: -Infinity,
      provenWallAt: -Infinity,
      query: <R extends pg.QueryResultRow>(sql: string, values?: unknown[]) => {
        const run = chain.then(async () => {
          const sent = performance.now();
          const sentWall = Date.now();
          const r = await client.query<R>(prepared(sql, values ?? []));
          if (sent > session.provenAt) {
            session.provenAt = sent;
            session.provenWallAt = sentWall;
          }
          return r;
        });
        chain = run.catch(() => {});
        return run;
      },
      unlock: (key: string) => {
        // A run ends by releasing its migration's and its number's leases at once (both on this
        // session): one round trip instead of two.
        if (!unlocking) {
          const batch: { keys: string[]; done: Promise<void> } = { keys: [], done: Promise.resolve() };
          batch.done = Promise.resolve().then(async () => {
            unlocking = null;
            await session.query('SELECT pg_advisory_unlock(k) FROM unnest($1::bigint[]) AS k', [batch.keys]);
          });
          unlocking = batch;
        }
        unlocking.keys.push(key);
        return unlocking.done;
      },
    };
    client.on('error', (e) => {
      session.lost ??= e;
    });
    client.on('end', () => {
      session.lost ??= new Error('the connection ended');
    });
    this.#sessions.push(session);
    session.ready = client.connect().then(() => undefined, (e: unknown) => {
      session.lost = e as Error;
      this.#sessions = this.#sessions.filter((x) => x !== session);
      const err = this.#scrub(e);
      throw new StoreUnavailableError(`cannot use PostgreSQL at ${this.where}: ${err.message}. Check --store / WABA_MIGRATE_STORE and that the server is running`);
    });
    session.ready.catch(() => {}); // awaited by each lease; never an unhandled rejection
    // Keep the session visibly alive; a frozen process stops pinging and the server ends it.
    if (this.#leaseTimeoutMs > 0) session.ping = setInterval(
      () => {
        if (!session.lost) session.query('SELECT 1').catch((e: Error) => (session.lost ??= e));
      },
      Math.max(50, Math.floor(this.#leaseTimeoutMs / 4)),
    );
    session.ping?.unref();
    return session;
  }

  async #endSession(session: LeaseSession, destroy = false): Promise<void> {
    session.closing = true;
    if (session.ping) clearInterval(session.ping);
    if (session.idle) clearTimeout(session.idle);
    this.#sessions = this.#sessions.filter((x) => x !== session);
    // A lost session's connection is already dead: do not wait for a goodbye from it.
    if (destroy) void session.client.end().catch(() => {});
    else await session.client.end().catch(() => {});
  }

  async #acquire(kind: string, id: string, what: string, near?: LeaseSession, retried = false): Promise<Lease> {
    // A lock needs no table: only read the schema's version (a newer one is refused). The schema
    // is created or upgraded by the first write (a lock taken to resume an unknown or finished
    // migration must leave the database as it was).
    this.#refuseClosed();
    await this.#version();
    this.#refuseClosed();
    const k = lockKey(kind, id);
    // Advisory locks are re-entrant within a session: the same process asking twice must be refused here.
    if (this.#localKeys.has(k.key)) throw new MigrationLockedError(id, this.#localKeys.get(k.key)!, what);
    const since = new Date().toISOString();
    const owner: LockOwner = { pid: process.pid, host: hostname(), since };
    this.#localKeys.set(k.key, owner);
    let taken: LeaseSession | null = null;
    let ok = false;
    try {
      taken = this.#session(near);
      await taken.ready;
      // application_name names the holder for holder() and for a person reading pg_stat_activity.
      // Never re-entrant: a lock this very session already holds (a claim that took it while this
      // call waited its turn on the session) is refused, as another process's would be.
      // Only claims (claimDue) take locks in SQL, and only migrations' locks: a number's or a
      // batch's key is taken here alone, after #localKeys said this process does not hold it, so
      // it needs no look at pg_locks (which copies the server's whole lock table).
      const r =
        kind === 'migration'
          ? await taken.query<{ ok: boolean }>(
              `SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = $3::oid AND objid = $4::oid AND objsubid = 1 AND granted)
                           THEN false ELSE pg_try_advisory_lock($1::bigint) END AS ok, set_config('application_name', $2, false)`,
              [k.key, ownerTag(since), k.classid, k.objid],
            )
          : await taken.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock($1::bigint) AS ok, set_config('application_name', $2, false)`, [k.key, ownerTag(since)]);
      ok = r.rows[0]?.ok === true;
    } catch (e) {
      this.#forgetKey(k.key, owner);
      // The statement may have failed after taking the lock: no new lease goes on this session,
      // and it ends with its last lease, freeing it (its other leases count as lost: their runs
      // stop, the safe way). As claimDue does.
      if (taken) {
        taken.lost ??= e as Error;
        await this.#drop(taken);
      }
      // A connection cut meanwhile (typically an idle session kept for the next lease, cut before
      // this process noticed) is not a lock failure: take the lock once more, on a new session.
      // Not beside a given lease (lockNumber's `with`): its session is the point.
      if (!near && !retried && !this.#closed && !(e instanceof StoreUnavailableError) && isConnectionError(e)) return this.#acquire(kind, id, what, undefined, true);
      throw e instanceof StoreUnavailableError ? e : this.#scrub(e);
    }
    const session = taken!;
    if (!ok) {
      this.#forgetKey(k.key, owner);
      await this.#drop(session);
      throw new MigrationLockedError(id, await this.#holderOf(k).catch(() => null), what);
    }
    return this.#lease(kind, id, k, session, owner);
  }

  #refuseClosed(): void {
    if (this.#closed) throw new StoreUnavailableError(`the PostgreSQL store at ${this.where} was closed: no lock or claim is taken after close()`);
  }

  /** Forgets a key only if `owner` still has it (a claim may have taken the key meanwhile). */
  #forgetKey(key: string, owner: LockOwner): void {
    if (this.#localKeys.get(key) === owner) this.#localKeys.delete(key);
  }

  /** The Lease of a lock this process has just taken on `session` (counted on it already). */
  #lease(kind: string, id: string, k: LockKey, session: LeaseSession, owner: LockOwner): Lease {
    const lostError = () => session.lost;
    let released = false;
    const held: Held = { query: (sql, values) => session.query(sql, values), lost: lostError };
    if (kind === 'migration') this.#held.set(id, held);
    const gone = (detail: unknown) => new MigrationLockLostError(id, `the PostgreSQL session holding it ended: ${this.#scrub(detail).message}`);
    const lease: Lease = {
      owner,
      assertHeld: async (options = {}) => {
        if (released) throw new MigrationLockLostError(id, 'it was released');
        if (session.lost) throw gone(session.lost);
        // Before a write: the migration's write goes through this very session (see #handle), so
        // a session the server ended fails that write; asking pg_locks first only adds a round
        // trip per transition. A number's lease guards requests to Meta, not writes of one
        // migration's document: it is checked in full before each request.
        if (options.beforeWrite) return;
        // Before a request to Meta: a query sent on this session moments ago (normally the intent
        // write that precedes every such request) already proved the session, and so its locks,
        // alive; ask again only when that proof is older than #freshMs. No clock decides who holds
        // the lock: the server does. With leaseTimeoutMs the server cannot have ended an idle
        // session within #freshMs (< leaseTimeoutMs) of a query it answered; a session cut in that
        // instant is the same window a pg_locks round trip leaves between its answer and the POST.
        // Both clocks must agree it is recent: the monotonic one ignores a host suspended meanwhile
        // (the server may have ended the session then), the wall clock can step.
        const wall = Date.now() - session.provenWallAt;
        if (options.beforeRequest && performance.now() - session.provenAt < this.#freshMs && wall >= 0 && wall < this.#freshMs) return;
        let still = false;
        try {
          const r = await session.query<{ held: boolean }>(
            `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = $1::oid AND objid = $2::oid AND objsubid = 1 AND granted) AS held`,
            [k.classid, k.objid],
          );
          still = r.rows[0]?.held === true;
        } catch (e) {
          session.lost ??= e as Error;
          throw gone(e);
        }
        if (!still) throw new MigrationLockLostError(id, 'PostgreSQL no longer shows it held by this session');
      },
      release: async () => {
        if (released) return;
        released = true;
        if (this.#held.get(id) === held) this.#held.delete(id);
        if (!session.lost && !session.closing) {
          // A failed unlock ends the session below, which drops the lock anyway.
          await session.unlock(k.key).catch((e: Error) => (session.lost ??= e));
        }
        this.#forgetKey(k.key, owner);
        await this.#drop(session);
      },
    };
    this.#leaseSessions.set(lease, session);
    return lease;
  }

  /** One lease fewer on a session; the last one out ends it (a lost one is ended at once). */
  async #drop(session: LeaseSession): Promise<void> {
    session.leases = Math.max(0, session.leases - 1);
    if (session.leases === 0 && (session.lost || session.closing)) await this.#endSession(session, Boolean(session.lost));
    else if (session.leases === 0) {
      refs(session.client).unref();
      session.idle = setTimeout(() => {
        if (session.leases === 0 && !session.closing) void this.#endSession(session);
      }, this.#leaseIdleMs);
      session.idle.unref();
    } else if (session.lost) this.#sessions = this.#sessions.filter((x) => x !== session); // no new leases on it
  }

  lock(id: string): Promise<Lease> {
    this.#checkId(id);
    return this.#acquire('migration', id, 'migration');
  }

  lockNumber(phone: string, options: { with?: Lease } = {}): Promise<Lease> {
    phoneDigits(phone);
    // Beside the migration's lease, on its session: the intent write that precedes each request
    // then proves both alive at once (see assertHeld), and one lost session loses both.
    return this.#acquire('number', phone, 'number', options.with ? this.#leaseSessions.get(options.with) : undefined);
  }

  lockBatch(id: string): Promise<Lease> {
    this.#checkId(id, 'batch');
    return this.#acquire('batch', id, 'batch');
  }

  async lockDelivery(kind: 'migration' | 'batch', id: string): Promise<Lease> {
    this.#checkId(id, kind);
    return this.#acquire(`deliver-${kind}`, id, `notifications of ${kind}`);
  }

  // ---- disabled notification endpoints --------------------------------------------------------

  async disableEndpoint(record: DisabledEndpoint): Promise<DisabledEndpoint> {
    validateDisabledEndpoint(record, 'disabled endpoint');
    await this.#ready();
    // The first 410 recorded stays; a later one returns it.
    const r = await this.#query<{ key: string; endpoint: string; disabled_at: Date; event_id: string; owner: string | null }>(
      `WITH ins AS (INSERT INTO ${SCHEMA}.disabled_endpoints (key, endpoint, disabled_at, event_id, owner) VALUES ($1, $2, $3::timestamptz, $4, $5)
                    ON CONFLICT (key) DO NOTHING RETURNING key, endpoint, disabled_at, event_id, owner)
       SELECT * FROM ins UNION ALL SELECT key, endpoint, disabled_at, event_id, owner FROM ${SCHEMA}.disabled_endpoints WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM ins)`,
      [record.key, record.endpoint, record.disabledAt, record.eventId, record.owner],
    );
    const row = r.rows[0];
    return row ? endpointRow(row) : record;
  }

  async enableEndpoint(key: string): Promise<DisabledEndpoint | null> {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`endpoint key "${key}" is not valid: a sha256 in hex`);
    if ((await this.#version()) < 2) return null;
    const r = await this.#query<{ key: string; endpoint: string; disabled_at: Date; event_id: string; owner: string | null }>(
      `DELETE FROM ${SCHEMA}.disabled_endpoints WHERE key = $1 RETURNING key, endpoint, disabled_at, event_id, owner`,
      [key],
    );
    return r.rows[0] ? endpointRow(r.rows[0]) : null;
  }

  async recordThrottle(t: StoredThrottle): Promise<void> {
    checkThrottle(t);
    await this.#ready();
    // The later time wins; an earlier one never shortens a pause in force.
    await this.#query(
      `INSERT INTO ${SCHEMA}.throttles (key, until_ms, code) VALUES ($1, $2, $3)
       ON CONFLICT (key) DO UPDATE SET until_ms = excluded.until_ms, code = excluded.code WHERE ${SCHEMA}.throttles.until_ms < excluded.until_ms`,
      [t.key, Math.round(t.until), t.code],
    );
    // Then, on its own, the other WABAs' pauses that ended more than THROTTLE_KEEP_MS ago (every
    // refresh of every process reads them all). Never waiting for a row another process is
    // writing (SKIP LOCKED), and never in the upsert's transaction: two processes each recording
    // one WABA and sweeping the other's deadlocked. A row rewritten meanwhile is re-checked.
    await this.#query(
      `DELETE FROM ${SCHEMA}.throttles WHERE key IN (SELECT key FROM ${SCHEMA}.throttles WHERE until_ms < $2 AND key <> $1 FOR UPDATE SKIP LOCKED)`,
      [t.key, Date.now() - THROTTLE_KEEP_MS],
    );
  }

  async throttles(nowMs: number): Promise<StoredThrottle[]> {
    if ((await this.#version()) < 4) return [];
    const r = await this.#query<{ key: string; until_ms: string; code: number | null }>(`SELECT key, until_ms, code FROM ${SCHEMA}.throttles WHERE until_ms > $1 ORDER BY key`, [nowMs]);
    return r.rows.map((x) => ({ key: x.key, until: Number(x.until_ms), code: x.code }));
  }

  async disabledEndpoints(): Promise<DisabledEndpoint[]> {
    if ((await this.#version()) < 2) return [];
    const r = await this.#query<{ key: string; endpoint: string; disabled_at: Date; event_id: string; owner: string | null }>(
      `SELECT key, endpoint, disabled_at, event_id, owner FROM ${SCHEMA}.disabled_endpoints ORDER BY disabled_at, key`,
    );
    return r.rows.map(endpointRow);
  }

  async #holderOf(k: LockKey): Promise<LockOwner | null> {
    const r = await this.#query<{ app: string; pid: number; backend_start: Date }>(
      `SELECT a.application_name AS app, a.pid, a.backend_start
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = 1 AND l.granted
        LIMIT 1`,
      [k.classid, k.objid],
    );
    const row = r.rows[0];
    if (!row) return null;
    return parseOwnerTag(row.app) ?? { pid: 0, host: `PostgreSQL backend ${row.pid}`, since: row.backend_start.toISOString() };
  }

  async holder(id: string): Promise<LockOwner | null> {
    this.#checkId(id);
    return this.#holderOf(lockKey('migration', id));
  }

  async holders(): Promise<(id: string) => LockOwner | null> {
    // One query: every granted advisory lock in this database with who holds it. A migration's
    // key is a hash of its id, so the answer is looked up by hashing the id asked about.
    const r = await this.#query<{ classid: string; objid: string; app: string; pid: number; backend_start: Date }>(
      `SELECT l.classid::text AS classid, l.objid::text AS objid, a.application_name AS app, a.pid, a.backend_start
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.objsubid = 1 AND l.granted`,
    );
    const held = new Map<string, LockOwner>();
    for (const row of r.rows)
      held.set(`${row.classid}:${row.objid}`, parseOwnerTag(row.app) ?? { pid: 0, host: `PostgreSQL backend ${row.pid}`, since: row.backend_start.toISOString() });
    return (id) => {
      if (!held.size) return null;
      const k = lockKey('migration', id);
      return held.get(`${k.classid}:${k.objid}`) ?? null;
    };
  }

  // ---- queries -------------------------------------------------------------------------------

  async byPhone(phone: string, options: ByPhoneOptions = {}): Promise<MigrationDocument[]> {
    phoneDigits(phone);
    if (!(await this.#readable())) return [];
    // One round trip for every migration of the number, documents and histories together.
    const r = await this.#query<{ id: string; doc: string; history: string }>(
      `SELECT m.id, m.doc::text AS doc,
              (SELECT coalesce(jsonb_agg(h.entry ORDER BY h.n), '[]'::jsonb)::text FROM ${SCHEMA}.history h WHERE h.migration_id = m.id) AS history
         FROM ${SCHEMA}.migrations m WHERE m.phone = $1 AND m.id IS DISTINCT FROM $2 ORDER BY m.id`,
      [phone, options.except ?? null],
    );
    const out: MigrationDocument[] = [];
    for (const row of r.rows) {
      try {
        out.push(this.#assemble(row.id, row.doc, row.history));
      } catch (e) {
        if (!(e instanceof StateDocumentError)) throw e;
        options.onDamaged?.(row.id, e); // its phone column says it is this number's
      }
    }
    return out;
  }

  /**
   * SKIP LOCKED with advisory locks: one statement on a lease session lists the due candidates
   * nobody holds (with the worker's filters) and takes each one's lock with pg_try_advisory_lock
   * as the outer LIMIT pulls it, so a candidate another worker took a moment earlier is skipped,
   * never waited for, and no lock is taken beyond the rows returned (the candidates are an
   * ORDER BY/LIMIT subquery; the lock is taken in the outer filter, the placement PostgreSQL's
   * manual gives for advisory locks with LIMIT).
   */
  claimDue(nowMs: number, limit: number, options: ClaimOptions = {}): Promise<Claim> {
    return this.#claimDue(nowMs, limit, options, false);
  }

  async #claimDue(nowMs: number, limit: number, options: ClaimOptions, retried: boolean): Promise<Claim> {
    this.#refuseClosed();
    if (limit < 1 || !(await this.#readable())) return { claimed: [], nextAt: null };
    await this.#ready();
    this.#refuseClosed();
    const filters = claimFilter(2, 3);
    const filterValues = [options.batch ?? null, options.withPin === true];
    const next = async () =>
      (await this.#query<{ next: string | null }>(`SELECT min(due_at) AS next FROM ${SCHEMA}.migrations WHERE due_at > $1 AND ${filters}`, [nowMs, ...filterValues])).rows[0]?.next ?? null;
    const none = async (): Promise<Claim> => {
      const n = await next();
      return { claimed: [], nextAt: n === null ? null : Number(n) };
    };
    // Nothing held by this process: make sure something is due before opening a lease session
    // for the claim (an idle worker woken by every write would otherwise connect each time).
    if (!this.#sessions.some((x) => !x.lost && !x.closing)) {
      const probe = await this.#query(`SELECT 1 FROM ${SCHEMA}.migrations WHERE due_at <= $1 AND ${filters} LIMIT 1`, [nowMs, ...filterValues]);
      if (!probe.rowCount) return none();
    }
    // Ours already (re-entrant on our own session), being taken by this process, or excluded by
    // the caller: never claimed.
    const exclude = [...new Set([...(options.exclude ?? []), ...this.#held.keys()])];
    const localKeys = [...this.#localKeys.keys()];
    const since = new Date().toISOString();
    const owner: LockOwner = { pid: process.pid, host: hostname(), since };
    const session = this.#session();
    let rows: { id: string; state: DueMigration['state']; due_at: string; hold: string | null; phone: string; batch: string | null; k: string }[];
    try {
      await session.ready;
      rows = (
        await session.query<(typeof rows)[number]>(
          `WITH ${HELD_CTE},
           top AS (
             -- The soonest due, through the (due_at, id) index: enough rows to still fill the
             -- request after dropping every one held (at most as many as there are held locks).
             SELECT id, state, due_at, hold, phone, batch FROM ${SCHEMA}.migrations
              WHERE due_at <= $1 AND id <> ALL($3::text[])
                AND ${claimFilter(4, 5)}
              ORDER BY due_at, id LIMIT $2 * 4 + 16 + (SELECT count(*) FROM held)),
           cand AS MATERIALIZED (
             SELECT id, state, due_at, hold, phone, batch, k FROM (
               SELECT *, ${MIGRATION_KEY_SQL} AS k FROM top) d
              WHERE ${notHeld('d.k')}
                AND d.k <> ALL($7::bigint[])
              ORDER BY due_at, id LIMIT $2 * 4 + 16)
           SELECT id, state, due_at, hold, phone, batch, k::text AS k, set_config('application_name', $6, false) AS app
             FROM cand WHERE pg_try_advisory_lock(k) LIMIT $2`,
          [nowMs, limit, exclude, options.batch ?? null, options.withPin === true, ownerTag(since), localKeys],
        )
      ).rows;
    } catch (e) {
      // A statement that failed part-way may have taken some locks (session locks survive the
      // rollback) that nobody knows of: no new lease goes on this session, and it ends with its
      // last lease, freeing them. Its other leases count as lost: their runs stop (the safe way).
      session.lost ??= e as Error;
      await this.#drop(session);
      // A lease session cut meanwhile (an idle one kept for the next lease, say): claim once more
      // on a new session rather than fail the worker's pass.
      if (!retried && !this.#closed && !(e instanceof StoreUnavailableError) && isConnectionError(e)) return this.#claimDue(nowMs, limit, options, true);
      throw e instanceof StoreUnavailableError ? e : this.#scrub(e);
    }
    if (!rows.length) {
      await this.#drop(session);
      return none();
    }
    const bad = rows.find((x) => lockKey('migration', x.id).key !== x.k);
    if (bad) {
      session.lost ??= new Error('lock keys differ between SQL and Node');
      await this.#drop(session);
      throw new Error(`lock key of ${bad.id} differs between SQL and Node (${bad.k} vs ${lockKey('migration', bad.id).key})`);
    }
    session.leases += rows.length - 1; // #session() counted one
    const claimed = rows.map((x): Claim['claimed'][number] => {
      const k = lockKey('migration', x.id);
      this.#localKeys.set(k.key, owner);
      return {
        due: { id: x.id, state: x.state, dueAt: Number(x.due_at), hold: x.hold === 'pin' ? 'pin' : null, phone: x.phone, batch: x.batch },
        lease: this.#lease('migration', x.id, k, session, owner),
      };
    });
    const n = rows.length < limit ? await next().catch(() => null) : null;
    return { claimed, nextAt: n === null ? null : Number(n) };
  }

  async listDue(nowMs: number, limit: number): Promise<{ due: DueMigration[]; nextAt: number | null }> {
    if (!(await this.#readable())) return { due: [], nextAt: null };
    // Skips what another process holds right now (the SKIP LOCKED of advisory locks): workers on
    // several hosts listing the same due rows would otherwise all try the same first ones, and each
    // refused try costs a read. The key is lockKey('migration', id) computed in SQL: the first 8
    // bytes of sha256("migration:<id>"), split into pg_locks' classid/objid. A lock taken between
    // this read and a worker's own try is still refused by the lock itself.
    const r = await this.#query<{ id: string; state: DueMigration['state']; due_at: string; hold: string | null; phone: string; batch: string | null }>(
      `WITH ${HELD_CTE},
       due AS (
         SELECT *, ${MIGRATION_KEY_SQL} AS k
           FROM (SELECT id, state, due_at, hold, phone, batch FROM ${SCHEMA}.migrations WHERE due_at <= $1
                  ORDER BY due_at, id LIMIT $2 + (SELECT count(*) FROM held)) top)
       SELECT id, state, due_at, hold, phone, batch FROM due
        WHERE ${notHeld('due.k')}
        ORDER BY due_at, id LIMIT $2`,
      [nowMs, limit],
    );
    const n = await this.#query<{ next: string | null }>(`SELECT min(due_at) AS next FROM ${SCHEMA}.migrations WHERE due_at > $1`, [nowMs]);
    return {
      due: r.rows.map((x) => ({ id: x.id, state: x.state, dueAt: Number(x.due_at), hold: x.hold === 'pin' ? 'pin' : null, phone: x.phone, batch: x.batch })),
      nextAt: n.rows[0]?.next == null ? null : Number(n.rows[0].next),
    };
  }

  /**
   * Maps every migration in id order, a page at a time (keyset on the primary key), so no
   * statement runs long whatever the table's size. `after`/`limit` read one slice;
   * `withoutHistory` skips the history (listing needs only the document).
   *
   * Each row is mapped as the driver parses it off the wire (pg's `row` event), not after its page
   * has arrived: a page of rows held while it is mapped outlives young-generation collections, and
   * V8 then promotes every document's text to the old space. Mapping row by row, `list --json`
   * over 100,000 migrations peaks at about half the memory (bench P3). A row waiting to be mapped
   * stays in the socket: the server is throttled by TCP, not buffered here.
   */
  async scan<T>(map: (m: ListedMigration) => T, options: ScanOptions = {}): Promise<T[]> {
    if (!(await this.#readable())) return [];
    const out: T[] = [];
    let after = options.after ?? '';
    let left = options.limit ?? Infinity;
    const page = this.#scanPage;
    const history = options.withoutHistory
      ? `'[]'`
      : `(SELECT coalesce(jsonb_agg(h.entry ORDER BY h.n), '[]'::jsonb)::text FROM ${SCHEMA}.history h WHERE h.migration_id = m.id)`;
    const text = `SELECT m.id, m.doc::text AS doc, ${history} AS history FROM ${SCHEMA}.migrations m WHERE m.id > $1 ORDER BY m.id LIMIT $2`;
    while (left > 0) {
      const take = Math.min(page, left);
      const c = await this.#connect(this.#pool);
      let rows = 0;
      let failed: unknown = null;
      try {
        await new Promise<void>((resolve, reject) => {
          const q = c.query(new pg.Query(text, [after, take]));
          q.on('row', (row: { id: string; doc: string; history: string }) => {
            if (failed) return;
            rows++;
            after = row.id;
            try {
              let listed: ListedMigration;
              try {
                listed = { id: row.id, doc: this.#assemble(row.id, row.doc, row.history) };
              } catch (e) {
                if (!(e instanceof StateDocumentError)) throw e;
                listed = { id: row.id, error: e };
              }
              out.push(map(listed));
            } catch (e) {
              // Thrown by the caller's map: the rest of the page is not mapped, and the
              // connection (still receiving it) is discarded below rather than waited on.
              failed = e;
              reject(e);
            }
          });
          q.on('error', (e: Error) => reject(this.#scrub(e)));
          q.on('end', () => resolve());
        });
      } catch (e) {
        failed ??= e;
        throw e;
      } finally {
        c.release(failed ? (failed instanceof Error ? failed : new Error(String(failed))) : undefined);
      }
      left -= rows;
      if (rows < take) break;
    }
    return out;
  }

  /** LISTEN on one connection shared by this store's watchers; every save NOTIFYs at commit. */
  watch(onChange: (id: string) => void): () => void {
    this.#watchers.add(onChange);
    this.#listening ??= (async () => {
      const client = new pg.Client({ connectionString: this.#url, application_name: `waba-migrate ${process.pid}@${hostname()} watch`.slice(0, 63), keepAlive: true, connectionTimeoutMillis: 10_000 });
      client.on('error', () => {
        // The listener died with its connection; a new watch() starts a new one.
        this.#listener = null;
        this.#listening = null;
      });
      client.on('notification', (n) => {
        if (n.channel !== CHANNEL || !n.payload) return;
        for (const w of [...this.#watchers]) w(n.payload);
      });
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      this.#listener = client;
      if (!this.#watchers.size) await this.#stopListening();
    })().catch(() => {
      this.#listening = null;
    });
    return () => {
      this.#watchers.delete(onChange);
      if (!this.#watchers.size) void this.#stopListening();
    };
  }

  /** Resolves once watch() is subscribed (tests and callers that must not miss the next write). */
  async watching(): Promise<void> {
    await this.#listening;
  }

  async #stopListening(): Promise<void> {
    const c = this.#listener;
    this.#listener = null;
    this.#listening = null;
    await c?.end().catch(() => {});
  }

  // ---- batches -------------------------------------------------------------------------------

  async saveBatch(batch: BatchRecord): Promise<void> {
    this.#checkId(batch.id, 'batch');
    validateBatch(batch, this.#name(`batch/${batch.id}`), batch.id);
    await this.#ready();
    await this.#query(
      `INSERT INTO ${SCHEMA}.batches (id, record, updated_at) VALUES ($1, $2::jsonb, $3::timestamptz)
       ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, updated_at = EXCLUDED.updated_at`,
      [batch.id, JSON.stringify(batch), batch.updatedAt],
    );
  }

  async loadBatch(id: string): Promise<BatchRecord> {
    this.#checkId(id, 'batch');
    if (!(await this.#readable())) throw new BatchNotFoundError(id);
    const r = await this.#query<{ record: string }>(`SELECT record::text AS record FROM ${SCHEMA}.batches WHERE id = $1`, [id]);
    const row = r.rows[0];
    if (!row) throw new BatchNotFoundError(id);
    return validateBatch(JSON.parse(row.record), this.#name(`batch/${id}`), id);
  }

  async listBatches(): Promise<BatchRecord[]> {
    if (!(await this.#readable())) return [];
    const r = await this.#query<{ id: string; record: string }>(`SELECT id, record::text AS record FROM ${SCHEMA}.batches ORDER BY id`);
    return r.rows.map((row) => validateBatch(JSON.parse(row.record), this.#name(`batch/${row.id}`), row.id));
  }

  /** Counts for `store copy` verification and for people. */
  async count(): Promise<{ migrations: number; history: number; batches: number }> {
    if (!(await this.#readable())) return { migrations: 0, history: 0, batches: 0 };
    const r = await this.#query<{ m: number; h: number; b: number }>(
      `SELECT (SELECT count(*) FROM ${SCHEMA}.migrations)::int AS m, (SELECT count(*) FROM ${SCHEMA}.history)::int AS h, (SELECT count(*) FROM ${SCHEMA}.batches)::int AS b`,
    );
    const row = r.rows[0]!;
    return { migrations: row.m, history: row.h, batches: row.b };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#watchers.clear();
    await this.#stopListening();
    for (const session of [...this.#sessions]) await this.#endSession(session, true);
    this.#held.clear();
    this.#localKeys.clear();
    await this.#pool.end().catch(() => {});
  }
}

function endpointRow(row: { key: string; endpoint: string; disabled_at: Date; event_id: string; owner: string | null }): DisabledEndpoint {
  return { key: row.key, endpoint: row.endpoint, disabledAt: row.disabled_at.toISOString(), eventId: row.event_id, owner: row.owner };
}

/** "wm <since> <pid>@<host>": who holds a lease, in pg_stat_activity (63 bytes at most). */
function ownerTag(since: string): string {
  return `wm ${since} ${process.pid}@${hostname()}`.slice(0, 63);
}

function parseOwnerTag(app: string): LockOwner | null {
  const m = /^wm (\S+) (\d+)@(.*)$/.exec(app);
  return m ? { since: m[1]!, pid: Number(m[2]), host: m[3]! } : null;
}

/** pg's Client has ref()/unref() on its socket (pg-pool's allowExitOnIdle uses them); its types omit them. */
function refs(client: pg.Client): { ref(): void; unref(): void } {
  return client as unknown as { ref(): void; unref(): void };
}

function isConnectionError(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return (
    /Connection terminated|not queryable|ECONNRESET|EPIPE|terminating connection/i.test(err?.message ?? '') ||
    err?.code === '57P01' || // admin_shutdown / pg_terminate_backend
    err?.code === '57P05' // idle_session_timeout
  );
}
