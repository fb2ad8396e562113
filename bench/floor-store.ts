/**
 * A measuring instrument, not a store: what the engine costs when keeping its documents costs
 * nothing but their serialisation. It holds each saved document as JSON text in memory (every
 * store turns a document into text on save and back on load, and validates what it loads) and its
 * locks are entries in a Set. It has no durability, serves one process, and implements only what
 * an engine run uses (the bench's migrateAll); anything else throws.
 *
 * Why: the P2 figure's "engine floor" was the file store in tmpfs without fsync. Measured, that
 * store still cost about a third of a second per 200 migrations in its own file-system calls, so
 * it was no floor: the engine's share of P2 was overstated and PostgreSQL's understated.
 */
import { validateDocument, type HistoryEntry, type MigrationDocument } from '../src/store/document.js';
import { MigrationLockedError, type Lease } from '../src/store/lock.js';
import { DuplicateMigrationError, MigrationNotFoundError, type ByPhoneOptions, type DocumentHandle, type MigrationStore } from '../src/store/store.js';

const unused = (what: string) => () => {
  throw new Error(`FloorStore is a bench instrument: ${what} is not part of an engine run`);
};

/**
 * Called by each save after the document became text: the bench's "writes only" P2 run sends each
 * one to PostgreSQL here (the document's text, the history entries not yet written, durable or not),
 * so that run costs the engine plus one committed write per transition, and nothing else.
 */
export type WriteThrough = (id: string, body: string, entries: string, durable: boolean) => Promise<void>;

export class FloorStore implements MigrationStore {
  readonly where = 'floor:(memory)';
  constructor(readonly writeThrough?: WriteThrough) {}
  readonly ephemeralLocks = true;
  /** id → the document without its history as text, and the history entries' texts (as PostgresStore keeps them). */
  readonly #docs = new Map<string, { body: string; history: string[] }>();
  readonly #locks = new Set<string>();
  /** phone → ids, as the real stores index it. */
  readonly #numbers = new Map<string, Set<string>>();

  async exists(id: string): Promise<boolean> {
    return this.#docs.has(id);
  }

  async load(id: string): Promise<MigrationDocument> {
    const kept = this.#docs.get(id);
    if (kept === undefined) throw new MigrationNotFoundError(id);
    return validateDocument({ ...JSON.parse(kept.body), history: kept.history.map((h) => JSON.parse(h) as HistoryEntry) }, `floor:${id}`, id);
  }

  #handle(doc: MigrationDocument, isNew: boolean): DocumentHandle {
    let stored = isNew ? 0 : doc.history.length;
    return {
      data: doc,
      save: async (options = {}) => {
        const { history, ...rest } = doc;
        const body = JSON.stringify(rest);
        const entries = history.slice(stored).map((h) => JSON.stringify(h));
        if (this.writeThrough) await this.writeThrough(doc.id, body, `[${entries.join(',')}]`, options.durable === true);
        stored = history.length;
        const kept = this.#docs.get(doc.id);
        if (kept) {
          kept.body = body;
          kept.history.push(...entries);
        } else this.#docs.set(doc.id, { body, history: entries });
        let ids = this.#numbers.get(doc.input.phone);
        if (!ids) this.#numbers.set(doc.input.phone, (ids = new Set()));
        ids.add(doc.id);
      },
    };
  }

  async open(id: string): Promise<DocumentHandle> {
    return this.#handle(await this.load(id), false);
  }

  async create(doc: MigrationDocument): Promise<DocumentHandle> {
    if (this.#docs.has(doc.id)) throw new DuplicateMigrationError(doc.id);
    return this.#handle(doc, true);
  }

  #take(key: string, id: string, what: string): Lease {
    if (this.#locks.has(key)) throw new MigrationLockedError(id, null, what);
    this.#locks.add(key);
    let released = false;
    return {
      owner: { pid: process.pid, host: 'floor', since: new Date().toISOString() },
      assertHeld: async () => {
        if (released) throw new Error(`${key} was released`);
      },
      release: async () => {
        released = true;
        this.#locks.delete(key);
      },
    };
  }

  async lock(id: string): Promise<Lease> {
    return this.#take(`migration:${id}`, id, 'migration');
  }

  async lockNumber(phone: string): Promise<Lease> {
    return this.#take(`number:${phone}`, phone, 'number');
  }

  async byPhone(phone: string, options: ByPhoneOptions = {}): Promise<MigrationDocument[]> {
    const out: MigrationDocument[] = [];
    for (const id of this.#numbers.get(phone) ?? []) if (id !== options.except) out.push(await this.load(id));
    return out;
  }

  holder = unused('holder');
  holders = unused('holders');
  listDue = unused('listDue');
  claimDue = unused('claimDue');
  scan = unused('scan');
  watch = unused('watch');
  watching = unused('watching');
  saveBatch = unused('saveBatch');
  loadBatch = unused('loadBatch');
  listBatches = unused('listBatches');
  lockBatch = unused('lockBatch');
  lockDelivery = unused('lockDelivery');
  disableEndpoint = unused('disableEndpoint');
  enableEndpoint = unused('enableEndpoint');
  disabledEndpoints = unused('disabledEndpoints');
  recordThrottle = unused('recordThrottle');
  throttles = unused('throttles');

  async close(): Promise<void> {}
}
