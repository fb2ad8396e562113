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
import { validateDocument, type MigrationDocument } from '../src/store/document.js';
import { MigrationLockedError, type Lease } from '../src/store/lock.js';
import { DuplicateMigrationError, MigrationNotFoundError, type ByPhoneOptions, type DocumentHandle, type MigrationStore } from '../src/store/store.js';

const unused = (what: string) => () => {
  throw new Error(`FloorStore is a bench instrument: ${what} is not part of an engine run`);
};

export class FloorStore implements MigrationStore {
  readonly where = 'floor:(memory)';
  readonly ephemeralLocks = true;
  readonly #docs = new Map<string, string>();
  readonly #locks = new Set<string>();
  /** phone → ids, as the real stores index it. */
  readonly #numbers = new Map<string, Set<string>>();

  async exists(id: string): Promise<boolean> {
    return this.#docs.has(id);
  }

  async load(id: string): Promise<MigrationDocument> {
    const text = this.#docs.get(id);
    if (text === undefined) throw new MigrationNotFoundError(id);
    return validateDocument(JSON.parse(text), `floor:${id}`, id);
  }

  #handle(doc: MigrationDocument): DocumentHandle {
    return {
      data: doc,
      save: async () => {
        this.#docs.set(doc.id, JSON.stringify(doc));
        let ids = this.#numbers.get(doc.input.phone);
        if (!ids) this.#numbers.set(doc.input.phone, (ids = new Set()));
        ids.add(doc.id);
      },
    };
  }

  async open(id: string): Promise<DocumentHandle> {
    return this.#handle(await this.load(id));
  }

  async create(doc: MigrationDocument): Promise<DocumentHandle> {
    if (this.#docs.has(doc.id)) throw new DuplicateMigrationError(doc.id);
    return this.#handle(doc);
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
