/**
 * lowdb persistence: one JSON document per migration in `<dir>/migrations/<id>.json`, so a
 * write touches one small file however many migrations exist. Locks live in `<dir>/locks/`.
 * The directory is 0700 and documents 0600: they hold business identifiers and history.
 */
import { readFileSync, watch as fsWatch } from 'node:fs';
import { chmod, link, mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Low } from 'lowdb';
import { AtomicJSONFile, fsyncDir } from './adapter.js';
import { BatchNotFoundError, dueOf, parseStoredJson, StateDocumentError, UNFINISHED, validateBatch, validateDisabledEndpoint, validateDocument, type BatchRecord, type DisabledEndpoint, type DueMigration, type MigrationDocument } from './document.js';
import { acquireLock, heldLocks, lockHolder, MigrationLockedError, type Lease, type LockOwner } from './lock.js';

export type { Lease, LockOwner, BatchRecord, DueMigration, DisabledEndpoint };

export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class MigrationNotFoundError extends Error {
  override readonly name = 'MigrationNotFoundError';
  constructor(readonly id: string) {
    super(`no migration "${id}" in this state directory; run \`waba-migrate list\` to see the ids (or check --state-dir)`);
  }
}

export class DuplicateMigrationError extends Error {
  override readonly name = 'DuplicateMigrationError';
  constructor(readonly id: string) {
    super(`id: a migration "${id}" already exists: pick another --id, or continue it with \`waba-migrate resume ${id}\``);
  }
}

export interface StoreOptions {
  /**
   * When a write is fsynced before it is renamed into place. Every write is atomic (temp file +
   * rename) and survives a crash of the process whatever this says; fsync adds survival of a
   * power cut or kernel crash.
   * - `barriers` (default): the writes the engine marks durable: every intent before a request
   *   that changes Meta's state, and the state a run stops in. A power cut can then lose only
   *   GET-only progress, which the next run redoes.
   * - `always`: every write. - `never`: none (tests, throwaway sandboxes).
   */
  fsync?: 'barriers' | 'always' | 'never';
}

/** A document opened for writing: `data` is live, `save()` writes it atomically. */
export interface DocumentHandle {
  readonly data: MigrationDocument;
  /** `durable: true` asks for the fsync (see StoreOptions.fsync). */
  save(options?: { durable?: boolean }): Promise<void>;
}

/**
 * What the engine, the fleet layer and the dashboard need from a store: implement it to keep
 * migrations somewhere else. `test/store/contract.ts` is the suite every implementation passes.
 */
export interface MigrationStore {
  /** A short, secret-free description for messages ("file:/abs/state", "postgres://host/db"). */
  readonly where: string;
  /**
   * True when taking a lock leaves nothing behind once it is released (PostgreSQL's advisory
   * locks). `resume` then takes its migration's lock first and reads the document once, under it;
   * with a store whose locks are files (false), it reads before the lock creates one, and again
   * under it. (`start` reads before its locks on every store: see MigrationEngine.start.)
   */
  readonly ephemeralLocks: boolean;
  exists(id: string): Promise<boolean>;
  /** Reads and validates one document, without the lock. A document that is not what it claims
   *  (its id is not the one asked for, its input disagrees with its machine) is refused. */
  load(id: string): Promise<MigrationDocument>;
  /** Opens an existing document for writing (under the lock). */
  open(id: string): Promise<DocumentHandle>;
  /** A handle for a new document; nothing is written before its first save. */
  create(doc: MigrationDocument): Promise<DocumentHandle>;
  /** Takes the per-migration lock without waiting (MigrationLockedError when held elsewhere). */
  lock(id: string): Promise<Lease>;
  /** Takes the per-number lock (E.164): one live migration per phone number, whatever the ids.
   *  `with`: a lease this process holds and will release at the same time (a store may keep the
   *  two together; each is still released on its own). */
  lockNumber(phone: string, options?: { with?: Lease }): Promise<Lease>;
  /** Who holds a migration's lock right now, or null; never takes it. */
  holder(id: string): Promise<LockOwner | null>;
  /**
   * Every held migration lock, read at once (one read of the kernel's lock table, one query):
   * what `list` shows beside thousands of migrations without asking once per migration. A
   * snapshot: a lock taken or released after it is not in it.
   */
  holders(): Promise<(id: string) => LockOwner | null>;
  /** Every readable migration of this number (E.164); one that cannot be read (damaged, edited)
   *  is not returned but passed to `onDamaged`: callers deciding whether the number is free must
   *  not take it for absent. */
  byPhone(phone: string, options?: ByPhoneOptions): Promise<MigrationDocument[]>;
  /** Migrations a worker could move now (due at or before `nowMs`, and not locked by anyone at
   *  the moment of reading), soonest first; and the earliest future due time among the rest, so a
   *  worker can sleep until then. */
  listDue(nowMs: number, limit: number): Promise<{ due: DueMigration[]; nextAt: number | null }>;
  /** Takes the locks of up to `limit` due migrations nobody holds, soonest first (what listDue
   *  would list, filtered by `options`): two processes never claim the same one, and a claim never
   *  waits for a lock. The caller owns each lease (an engine run releases it). */
  claimDue(nowMs: number, limit: number, options?: ClaimOptions): Promise<Claim>;
  /** Maps every document (or the error reading it) as it is read, in id order. */
  scan<T>(map: (m: ListedMigration) => T, options?: ScanOptions): Promise<T[]>;
  /** Calls `onChange(id)` after any process writes a migration; returns the unsubscribe. */
  watch(onChange: (id: string) => void): () => void;
  /** Resolves once every watch() started so far is subscribed: a write after this is reported. */
  watching(): Promise<void>;
  /** Batches (the fleet layer): a record written atomically as a whole. */
  saveBatch(batch: BatchRecord): Promise<void>;
  loadBatch(id: string): Promise<BatchRecord>;
  listBatches(): Promise<BatchRecord[]>;
  lockBatch(id: string): Promise<Lease>;
  /**
   * Takes the delivery lock of a migration's (or a batch's) notifications without waiting
   * (MigrationLockedError when held): whoever holds it is the only one POSTing that outbox, so
   * two processes never deliver the same event at once. Separate from the migration's lock, so a
   * slow receiver never keeps a run out.
   */
  lockDelivery(kind: 'migration' | 'batch', id: string): Promise<Lease>;
  /** Records that a notification endpoint answered 410 Gone. The first record of an endpoint
   *  stays until it is enabled again (returns the record in force). */
  disableEndpoint(record: DisabledEndpoint): Promise<DisabledEndpoint>;
  /** Forgets an endpoint's 410: returns the record removed, or null if it was not disabled. */
  enableEndpoint(key: string): Promise<DisabledEndpoint | null>;
  /** Every disabled endpoint, oldest first. */
  disabledEndpoints(): Promise<DisabledEndpoint[]>;
  /**
   * Meta throttled a WABA (80007, 4, 130429) until `until`: recorded for every process of this
   * store, so the others pause that WABA too instead of each drawing its own 80007 (RateBudget).
   * A later time replaces an earlier one; an earlier one never shortens a pause in force. Also
   * removes the other WABAs' pauses that ended more than THROTTLE_KEEP_MS ago.
   */
  recordThrottle(t: StoredThrottle): Promise<void>;
  /** The pauses still in force at `nowMs`, by WABA. */
  throttles(nowMs: number): Promise<StoredThrottle[]>;
  /** Releases connections and watchers. */
  close(): Promise<void>;
}

export interface ByPhoneOptions {
  /** Called for a migration of this number that cannot be read (it is not returned). */
  onDamaged?: (id: string, error: StateDocumentError) => void;
  /** Leaves this migration out (not read at all): the engine asks for the *other* migrations. */
  except?: string;
}

/** A WABA Meta throttled, as shared through the store (recordThrottle). */
export interface StoredThrottle {
  /** The WABA id (the rate budget's key). */
  key: string;
  /** Paused until (ms since epoch). */
  until: number;
  /** Meta's throttling code, or null. */
  code: number | null;
}

/**
 * How long an expired pause is kept before the next recordThrottle removes it (ms): an hour, Meta's
 * longest window, so a host whose clock runs behind still sees a pause it would hold in force.
 */
export const THROTTLE_KEEP_MS = 60 * 60_000;

/** A throttle's key is a Graph id: digits only (it names a file and a row). */
export function checkThrottle(t: StoredThrottle): void {
  if (!/^[0-9]{1,32}$/.test(t.key)) throw new Error(`throttle key "${t.key}" is not valid: a WABA id (digits)`);
  if (!Number.isFinite(t.until)) throw new Error(`throttle of ${t.key}: until must be a time in ms`);
  if (t.code !== null && !Number.isInteger(t.code)) throw new Error(`throttle of ${t.key}: code must be a whole number or null`);
}

/** Which due migrations a worker takes (claimDue). */
export interface ClaimOptions {
  /** Ids not to claim (tried already in this pass, backing off). */
  exclude?: Iterable<string>;
  /** Only this batch's migrations. */
  batch?: string;
  /** Also those held for the register PIN (the worker has it). */
  withPin?: boolean;
  /** A migration whose lock could not be tried at all (not "held elsewhere": an error): it is
   *  skipped and reported here, and the claim goes on with the others. */
  onError?: (id: string, error: Error) => void;
}

/** A due migration and the lease on it that claimDue took. */
export interface ClaimedMigration {
  due: DueMigration;
  lease: Lease;
}

/** What claimDue took, and (when it took fewer than asked) when the next migration falls due. */
export interface Claim {
  claimed: ClaimedMigration[];
  /** The earliest due time after `nowMs` (ms), or null: none, or every asked slot was filled. */
  nextAt: number | null;
}

export interface ScanOptions {
  /** Only ids after this one (keyset paging). */
  after?: string;
  /** At most this many. */
  limit?: number;
  /** The caller needs no history (listing): a store may then leave `doc.history` empty. */
  withoutHistory?: boolean;
}

export interface ListedMigration {
  id: string;
  doc?: MigrationDocument;
  error?: StateDocumentError;
}

export class FileStore implements MigrationStore {
  /** A lock is a file that stays (removing one is unsafe): see lock.ts. */
  readonly ephemeralLocks = false;
  readonly dir: string;
  readonly migrationsDir: string;
  readonly locksDir: string;
  readonly batchesDir: string;
  readonly endpointsDir: string;
  readonly throttlesDir: string;
  readonly #fsync: NonNullable<StoreOptions['fsync']>;
  #ready: Promise<void> | null = null;

  constructor(dir: string, options: StoreOptions = {}) {
    this.dir = dir;
    this.migrationsDir = join(dir, 'migrations');
    this.locksDir = join(dir, 'locks');
    this.batchesDir = join(dir, 'batches');
    this.endpointsDir = join(dir, 'endpoints');
    this.throttlesDir = join(dir, 'throttles');
    this.#fsync = options.fsync ?? 'barriers';
  }

  get where(): string {
    return `file:${this.dir}`;
  }

  file(id: string): string {
    if (!ID_PATTERN.test(id)) throw new Error(`migration id "${id}" is not valid: use 1-64 letters, digits, '.', '_' or '-'`);
    return join(this.migrationsDir, `${id}.json`);
  }

  /** Creates the directories (0700). Only writers call this: reading never creates anything. */
  init(): Promise<void> {
    this.#ready ??= (async () => {
      // Numbers', batches' and deliveries' locks live in their own folders: a migration may be
      // named "batch-1" or "number-1631…", and its lock (locks/<id>.lock) must never be theirs.
      for (const d of [this.dir, this.migrationsDir, this.locksDir, join(this.locksDir, 'number'), join(this.locksDir, 'batch'), join(this.locksDir, 'deliver'), this.batchesDir]) {
        await mkdir(d, { recursive: true, mode: 0o700 });
        await chmod(d, 0o700);
      }
    })();
    return this.#ready;
  }

  async exists(id: string): Promise<boolean> {
    try {
      await stat(this.file(id));
      return true;
    } catch {
      return false;
    }
  }

  /** Reads and validates one document without locking it. */
  async load(id: string): Promise<MigrationDocument> {
    const file = this.file(id);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MigrationNotFoundError(id);
      throw e;
    }
    return parseDocument(text, file, id);
  }

  /** Opens an existing document for writing (call under the lock). Temp files left by a writer
   *  killed mid-write are removed first: under the lock, no other writer of this id exists. */
  async open(id: string): Promise<DocumentHandle> {
    const doc = await this.load(id);
    await this.#removeTemps(id);
    return this.#handle(id, doc);
  }

  async #removeTemps(id: string): Promise<void> {
    const prefix = `${id}.json.`;
    let names: string[] = [];
    try {
      names = await readdir(this.migrationsDir);
    } catch {
      return;
    }
    for (const n of names) if (n.startsWith(prefix) && n.endsWith('.tmp')) await unlink(join(this.migrationsDir, n)).catch(() => {});
  }

  /** A handle for a new document (call under the lock); refuses an id that exists. Nothing is
   *  written until the first `save()`, so a crash before it leaves no half-made migration. */
  async create(doc: MigrationDocument): Promise<DocumentHandle> {
    await this.init();
    if (await this.exists(doc.id)) throw new DuplicateMigrationError(doc.id);
    await this.#ensureIndex();
    await this.#mark(doc.id, doc.input.phone);
    return this.#handle(doc.id, doc);
  }

  #handle(id: string, doc: MigrationDocument): DocumentHandle {
    const adapter = new AtomicJSONFile<MigrationDocument>(this.file(id), { fsync: this.#fsync !== 'never' });
    const db = new Low<MigrationDocument>(adapter, doc);
    db.data = doc;
    const policy = this.#fsync;
    const dir = this.migrationsDir;
    return {
      get data() {
        return db.data;
      },
      save: async (options = {}) => {
        const durable = policy === 'always' || (policy === 'barriers' && options.durable === true);
        await adapter.writeWith(db.data, durable);
        // The rename itself survives a power cut only once the directory is on disk too.
        if (durable) await fsyncDir(dir);
      },
    };
  }

  async lock(id: string): Promise<Lease> {
    this.file(id); // validates the id before it names a file
    await this.init();
    return acquireLock(id, join(this.locksDir, `${id}.lock`));
  }

  async lockNumber(phone: string): Promise<Lease> {
    const digits = phoneDigits(phone);
    await this.init();
    return acquireLock(phone, join(this.locksDir, 'number', `${digits}.lock`), 'number');
  }

  async holder(id: string): Promise<LockOwner | null> {
    this.file(id);
    return lockHolder(join(this.locksDir, `${id}.lock`));
  }

  async holders(): Promise<(id: string) => LockOwner | null> {
    const held = heldLocks(this.locksDir, (name) => name.endsWith('.lock') && ID_PATTERN.test(name.slice(0, -5)));
    return (id) => held.get(`${id}.lock`) ?? null;
  }

  /**
   * Every migration of a number, through a small index (`index/numbers/<digits>/<id>`, empty
   * files) so `start` and `resume` never scan the whole store: with 10,000 documents a scan per
   * run made every transition wait seconds. The marker is written before the document's first save
   * (a marker without a document is skipped); a store from before the index is indexed once.
   */
  async byPhone(phone: string, options: ByPhoneOptions = {}): Promise<MigrationDocument[]> {
    const dir = join(this.#numbersIndex, phoneDigits(phone));
    await this.#ensureIndex();
    const ids = await namesIn(dir);
    if (ids === null) return [];
    const out: MigrationDocument[] = [];
    for (const id of ids.sort()) {
      if (!ID_PATTERN.test(id) || id === options.except) continue;
      try {
        const doc = await this.load(id);
        if (doc.input.phone === phone) out.push(doc);
      } catch (e) {
        if (e instanceof StateDocumentError) options.onDamaged?.(id, e); // indexed under this number
        else if (!(e instanceof MigrationNotFoundError)) throw e;
      }
    }
    return out;
  }

  get #numbersIndex(): string {
    return join(this.dir, 'index', 'numbers');
  }

  async #mark(id: string, phone: string): Promise<void> {
    const dir = join(this.#numbersIndex, phoneDigits(phone));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, id), '', { mode: 0o600 });
  }

  #indexReady: Promise<void> | null = null;

  /** Builds the index once for a store written before it existed (readers build nothing). */
  #ensureIndex(): Promise<void> {
    this.#indexReady ??= (async () => {
      try {
        await stat(this.#numbersIndex);
        return;
      } catch {
        // not there yet
      }
      let any = false;
      try {
        any = (await readdir(this.migrationsDir)).length > 0;
      } catch {
        return; // no store yet: the first create makes the index
      }
      if (!any) return;
      await this.scan((m) => (m.doc ? [m.id, m.doc.input.phone] : null)).then(async (pairs) => {
        for (const p of pairs) if (p) await this.#mark(p[0]!, p[1]!);
      });
    })();
    return this.#indexReady;
  }

  /** Lists, filters, then tries each one's kernel lock without waiting: a taken one is skipped. */
  async claimDue(nowMs: number, limit: number, options: ClaimOptions = {}): Promise<Claim> {
    if (limit < 1) return { claimed: [], nextAt: null };
    const exclude = new Set(options.exclude ?? []);
    const { due, nextAt } = await this.listDue(nowMs, Number.MAX_SAFE_INTEGER);
    const out: ClaimedMigration[] = [];
    for (const d of due) {
      if (out.length >= limit) break;
      if (exclude.has(d.id) || (options.batch !== undefined && d.batch !== options.batch) || (d.hold === 'pin' && !options.withPin)) continue;
      try {
        out.push({ due: d, lease: await this.lock(d.id) });
      } catch (e) {
        if (!(e instanceof MigrationLockedError)) options.onError?.(d.id, e as Error);
      }
    }
    return { claimed: out, nextAt: out.length < limit ? nextAt : null };
  }

  async listDue(nowMs: number, limit: number): Promise<{ due: DueMigration[]; nextAt: number | null }> {
    let nextAt: number | null = null;
    const all = await this.scan((m) => (m.doc ? dueOf(m.doc) : null), { withoutHistory: true });
    let due: DueMigration[] = [];
    for (const d of all) {
      if (!d) continue;
      if (d.dueAt > nowMs) nextAt = nextAt === null ? d.dueAt : Math.min(nextAt, d.dueAt);
      else due.push(d);
    }
    if (due.length) {
      const held = await this.holders(); // what another run holds now is not for the taking
      due = due.filter((d) => !held(d.id));
    }
    due.sort((a, b) => a.dueAt - b.dueAt || a.id.localeCompare(b.id));
    return { due: due.slice(0, limit), nextAt };
  }

  /**
   * Any process's writes, seen through the directory: every save renames a temp file onto
   * `<id>.json`, which inotify reports. Events are coalesced per id over a few milliseconds.
   */
  watch(onChange: (id: string) => void): () => void {
    let watcher: ReturnType<typeof fsWatch> | null = null;
    const pending = new Set<string>();
    let timer: NodeJS.Timeout | null = null;
    const flush = () => {
      timer = null;
      const ids = [...pending];
      pending.clear();
      for (const id of ids) onChange(id);
    };
    const start = async () => {
      await this.init();
      watcher = fsWatch(this.migrationsDir, (_event, name) => {
        if (!name || !name.endsWith('.json')) return;
        const id = name.slice(0, -5);
        if (!ID_PATTERN.test(id)) return;
        pending.add(id);
        timer ??= setTimeout(flush, 5);
      });
      watcher.on('error', () => {});
    };
    let closed = false;
    const ready = start().then(() => {
      if (closed) watcher?.close();
    });
    // A watch that could not start (no inotify watches left: ENOSPC) fails watching(), so a
    // caller that depends on it (the dashboard's live index) says so instead of going stale.
    ready.catch((e: unknown) => (this.#watchError ??= e as Error)); // and never an unhandled rejection
    this.#watchStarts.add(ready);
    void ready.finally(() => this.#watchStarts.delete(ready)).catch(() => {});
    return () => {
      closed = true;
      watcher?.close();
      if (timer) clearTimeout(timer);
    };
  }

  readonly #watchStarts = new Set<Promise<void>>();

  /** Resolves once every watch() started so far sees writes (inotify is attached after init). */
  async watching(): Promise<void> {
    await Promise.all([...this.#watchStarts]).catch(() => {}); // the reason is kept below
    if (this.#watchError) throw new Error(`cannot watch ${this.migrationsDir} for changes: ${this.#watchError.message}`);
  }

  #watchError: Error | null = null;

  #batchFile(id: string): string {
    if (!ID_PATTERN.test(id)) throw new Error(`batch id "${id}" is not valid: use 1-64 letters, digits, '.', '_' or '-'`);
    return join(this.batchesDir, `${id}.json`);
  }

  async saveBatch(batch: BatchRecord): Promise<void> {
    await this.init();
    validateBatch(batch, this.#batchFile(batch.id), batch.id);
    await new AtomicJSONFile<BatchRecord>(this.#batchFile(batch.id), { fsync: this.#fsync !== 'never' }).writeWith(batch, this.#fsync !== 'never');
  }

  async loadBatch(id: string): Promise<BatchRecord> {
    const file = this.#batchFile(id);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BatchNotFoundError(id);
      throw e;
    }
    return validateBatch(parseStoredJson(text, file), file, id);
  }

  async listBatches(): Promise<BatchRecord[]> {
    const names = await namesIn(this.batchesDir);
    if (names === null) return [];
    const out: BatchRecord[] = [];
    for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
      const id = n.slice(0, -5);
      if (ID_PATTERN.test(id)) out.push(await this.loadBatch(id));
    }
    return out;
  }

  async lockBatch(id: string): Promise<Lease> {
    this.#batchFile(id);
    await this.init();
    return acquireLock(id, join(this.locksDir, 'batch', `${id}.lock`), 'batch');
  }

  async lockDelivery(kind: 'migration' | 'batch', id: string): Promise<Lease> {
    if (kind === 'batch') this.#batchFile(id);
    else this.file(id);
    await this.init();
    return acquireLock(id, join(this.locksDir, 'deliver', `${kind}-${id}.lock`), `notifications of ${kind}`);
  }

  #endpointFile(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`endpoint key "${key}" is not valid: a sha256 in hex`);
    return join(this.endpointsDir, `${key}.json`);
  }

  async #readEndpoint(key: string): Promise<DisabledEndpoint | null> {
    const file = this.#endpointFile(key);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    return validateDisabledEndpoint(parseStoredJson(text, file), file);
  }

  /** One small file per disabled endpoint (`endpoints/<sha256>.json`), created exclusively so
   *  the first 410 recorded stays. */
  async disableEndpoint(record: DisabledEndpoint): Promise<DisabledEndpoint> {
    validateDisabledEndpoint(record, 'disabled endpoint');
    const file = this.#endpointFile(record.key);
    await this.init();
    await mkdir(this.endpointsDir, { recursive: true, mode: 0o700 });
    // Written whole beside it, then hard-linked into place: atomic (never a torn record) and
    // exclusive (link fails if the name exists), then the temp name is dropped.
    const tmp = join(this.endpointsDir, `.${record.key}.${process.pid}.${Date.now()}.tmp`);
    await new AtomicJSONFile<DisabledEndpoint>(tmp, { fsync: this.#fsync !== 'never' }).writeWith(record, this.#fsync !== 'never');
    try {
      await link(tmp, file);
      if (this.#fsync !== 'never') await fsyncDir(this.endpointsDir);
      return record;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      return (await this.#readEndpoint(record.key)) ?? record;
    } finally {
      await unlink(tmp).catch(() => {});
    }
  }

  async enableEndpoint(key: string): Promise<DisabledEndpoint | null> {
    const rec = await this.#readEndpoint(key).catch((e: unknown) => {
      if (e instanceof StateDocumentError) return null; // a damaged record is removed all the same
      throw e;
    });
    try {
      await unlink(this.#endpointFile(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    return rec ?? { key, endpoint: '(unreadable record)', disabledAt: '', eventId: '', owner: null };
  }

  async disabledEndpoints(): Promise<DisabledEndpoint[]> {
    const names = await namesIn(this.endpointsDir);
    if (names === null) return [];
    const out: DisabledEndpoint[] = [];
    for (const n of names) {
      const m = /^([0-9a-f]{64})\.json$/.exec(n);
      if (!m) continue;
      const r = await this.#readEndpoint(m[1]!);
      if (r) out.push(r);
    }
    return out.sort((a, b) => (a.disabledAt < b.disabledAt ? -1 : a.disabledAt > b.disabledAt ? 1 : a.key < b.key ? -1 : 1));
  }

  /**
   * One small file per throttled WABA (`throttles/<waba>.json`), replaced atomically. Two
   * processes recording the same WABA at once may keep either time: a pause is advice to the
   * other processes (each still learns from its own answers), never a lock.
   */
  async recordThrottle(t: StoredThrottle): Promise<void> {
    checkThrottle(t);
    // One write at a time per WABA in this process (one answer can teach two pauses at once: the
    // usage header's and the error's), so the later time is never overwritten by the earlier.
    await this.#queueThrottle(t.key, () => this.#writeThrottle(t));
    // Outside this WABA's queue (a sweep waits in the others' queues: inside, two would wait for
    // each other). A failed sweep is no failed record.
    await this.#sweepThrottles(t.key).catch(() => {});
  }

  /** Runs `fn` after this process's earlier writes of WABA `key`'s pause. */
  #queueThrottle(key: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.#throttleWrites.get(key) ?? Promise.resolve();
    const next = prev.then(fn);
    const settled = next.catch(() => {});
    this.#throttleWrites.set(key, settled);
    void settled.then(() => {
      if (this.#throttleWrites.get(key) === settled) this.#throttleWrites.delete(key);
    });
    return next;
  }

  readonly #throttleWrites = new Map<string, Promise<void>>();

  async #writeThrottle(t: StoredThrottle): Promise<void> {
    await this.init();
    await mkdir(this.throttlesDir, { recursive: true, mode: 0o700 });
    const file = join(this.throttlesDir, `${t.key}.json`);
    // Another process may write the same WABA between our read and our rename: read back, and
    // write again (a few times at most) while the file says less than we know.
    for (let i = 0; i < 3; i++) {
      const prev = await this.#readThrottle(file);
      if (prev && prev.until >= t.until) break;
      // A pause is advice, never a barrier: atomic (temp + rename), not fsynced.
      await new AtomicJSONFile<StoredThrottle>(file, { fsync: false }).writeWith({ key: t.key, until: t.until, code: t.code }, false);
    }
  }

  /**
   * Removes the other WABAs' pauses that ended more than THROTTLE_KEEP_MS ago: every refresh of
   * every process reads them all. Each removal waits in that WABA's queue and reads the file again
   * first, so this process's own new pause for it is never removed. A pause *another* process
   * writes for it in the instant between that read and the unlink is lost; it is advice, and the
   * next 80007 teaches it again. A damaged pause file (no pause, see #readThrottle) and a crashed
   * write's temp file go too once untouched for as long: a live write renames its temp at once.
   */
  async #sweepThrottles(except: string): Promise<void> {
    const before = Date.now() - THROTTLE_KEEP_MS;
    const untouchedSince = async (file: string) => ((await stat(file).catch(() => null))?.mtimeMs ?? Infinity) < before;
    for (const n of (await namesIn(this.throttlesDir)) ?? []) {
      const file = join(this.throttlesDir, n);
      const temp = /^([0-9]{1,32})\.json\.[0-9]+\.[0-9]+\.tmp$/.exec(n);
      if (temp) {
        if (temp[1] !== except && (await untouchedSince(file))) await unlink(file).catch(() => {});
        continue;
      }
      if (!/^[0-9]{1,32}\.json$/.test(n) || n === `${except}.json`) continue;
      const stale = async () => {
        const t = await this.#readThrottle(file);
        return t !== null ? t.until < before : untouchedSince(file);
      };
      if (!(await stale())) continue;
      await this.#queueThrottle(n.slice(0, -5), async () => {
        if (await stale()) await unlink(file).catch(() => {});
      });
    }
  }

  async #readThrottle(file: string): Promise<StoredThrottle | null> {
    try {
      const raw = JSON.parse(await readFile(file, 'utf8')) as StoredThrottle;
      checkThrottle(raw);
      return raw;
    } catch {
      // Missing, or unreadable (a pause is advice: a damaged one is no pause, and is replaced).
      return null;
    }
  }

  async throttles(nowMs: number): Promise<StoredThrottle[]> {
    const names = await namesIn(this.throttlesDir);
    if (names === null) return [];
    const out: StoredThrottle[] = [];
    for (const n of names) {
      if (!/^[0-9]{1,32}\.json$/.test(n)) continue;
      const t = await this.#readThrottle(join(this.throttlesDir, n));
      if (t && t.until > nowMs) out.push(t);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  async close(): Promise<void> {}

  async ids(): Promise<string[]> {
    const names = await namesIn(this.migrationsDir);
    if (names === null) return [];
    return names
      .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
      .map((n) => n.slice(0, -5))
      .filter((id) => ID_PATTERN.test(id))
      .sort();
  }

  /** Every document, validated; damaged ones are reported, not skipped silently. */
  async list(): Promise<ListedMigration[]> {
    return this.scan((m) => m);
  }

  /**
   * Reads every document (a few at a time) and maps it as soon as it is read, so a caller that
   * keeps only a summary never holds thousands of parsed documents at once. Results keep id order.
   */
  async scan<T>(map: (m: ListedMigration) => T, options: ScanOptions = {}): Promise<T[]> {
    let ids = await this.ids();
    if (options.after !== undefined) ids = ids.filter((id) => id > options.after!);
    if (options.limit !== undefined) ids = ids.slice(0, options.limit);
    const out: T[] = [];
    // Synchronous reads, one after the other: a document is a few KB in the page cache, and one
    // readFileSync costs a fraction of the four thread-pool trips of an async read (bench,
    // figure 4). Scanning is for readers (list) that have nothing else to serve meanwhile.
    for (const id of ids) {
      const file = join(this.migrationsDir, `${id}.json`);
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // vanished since readdir
        throw e;
      }
      try {
        out.push(map({ id, doc: parseDocument(text, file, id, { withoutHistory: options.withoutHistory === true }) }));
      } catch (e) {
        if (e instanceof StateDocumentError) out.push(map({ id, error: e }));
        else throw e;
      }
    }
    return out;
  }
}

/** The digits of an E.164 number, for lock names; refuses anything else. */
/** A folder's entries, or null when the folder does not exist (nothing written yet). */
async function namesIn(dir: string): Promise<string[] | null> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export function phoneDigits(phone: string): string {
  if (!/^\+[1-9]\d{6,14}$/.test(phone)) throw new Error(`phone "${phone}" is not an E.164 number`);
  return phone.slice(1);
}

export { UNFINISHED };

/**
 * `withoutHistory` (listing, summaries): the history is not handed out, so only its first entry
 * (the start, which must name the same number) is validated and `history` comes back empty, as
 * PostgreSQL's scan gives it. Validating every entry of every history was half of the time of
 * `list`/`batch status` over 10,000 migrations; a document loaded to run is validated whole.
 */
export function parseDocument(text: string, file: string, expectedId?: string, options: { withoutHistory?: boolean } = {}): MigrationDocument {
  const raw = parseStoredJson(text, file, 'Restore it from a backup or remove it.');
  if (!options.withoutHistory || !raw || typeof raw !== 'object' || !Array.isArray((raw as { history?: unknown }).history)) return validateDocument(raw, file, expectedId);
  const r = raw as { history: unknown[] };
  r.history = r.history.slice(0, 1);
  const doc = validateDocument(r, file, expectedId);
  doc.history = [];
  return doc;
}
