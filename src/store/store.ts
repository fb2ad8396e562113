/**
 * lowdb persistence: one JSON document per migration in `<dir>/migrations/<id>.json`, so a
 * write touches one small file however many migrations exist. Locks live in `<dir>/locks/`.
 * The directory is 0700 and documents 0600: they hold business identifiers and history.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Low } from 'lowdb';
import { AtomicJSONFile } from './adapter.js';
import { StateDocumentError, validateDocument, type MigrationDocument } from './document.js';
import { acquireLock } from './lock.js';

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

/** What the engine needs from a store: implement it to keep migrations somewhere else. */
export interface MigrationStore {
  exists(id: string): Promise<boolean>;
  /** Reads and validates one document, without the lock. */
  load(id: string): Promise<MigrationDocument>;
  /** Opens an existing document for writing (under the lock). */
  open(id: string): Promise<DocumentHandle>;
  /** A handle for a new document; nothing is written before its first save. */
  create(doc: MigrationDocument): Promise<DocumentHandle>;
  /** Takes the per-migration lock; resolves to its release. */
  lock(id: string): Promise<() => Promise<void>>;
  /** Maps every document (or the error reading it) as it is read. */
  scan<T>(map: (m: ListedMigration) => T): Promise<T[]>;
}

export interface ListedMigration {
  id: string;
  doc?: MigrationDocument;
  error?: StateDocumentError;
}

export class FileStore implements MigrationStore {
  readonly dir: string;
  readonly migrationsDir: string;
  readonly locksDir: string;
  readonly #fsync: NonNullable<StoreOptions['fsync']>;
  #ready: Promise<void> | null = null;

  constructor(dir: string, options: StoreOptions = {}) {
    this.dir = dir;
    this.migrationsDir = join(dir, 'migrations');
    this.locksDir = join(dir, 'locks');
    this.#fsync = options.fsync ?? 'barriers';
  }

  file(id: string): string {
    if (!ID_PATTERN.test(id)) throw new Error(`migration id "${id}" is not valid: use 1-64 letters, digits, '.', '_' or '-'`);
    return join(this.migrationsDir, `${id}.json`);
  }

  /** Creates the directories (0700). Only writers call this: reading never creates anything. */
  init(): Promise<void> {
    this.#ready ??= (async () => {
      for (const d of [this.dir, this.migrationsDir, this.locksDir]) {
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
    return parseDocument(text, file);
  }

  /** Opens an existing document for writing (call under the lock). */
  async open(id: string): Promise<DocumentHandle> {
    const doc = await this.load(id);
    return this.#handle(id, doc);
  }

  /** A handle for a new document (call under the lock); refuses an id that exists. Nothing is
   *  written until the first `save()`, so a crash before it leaves no half-made migration. */
  async create(doc: MigrationDocument): Promise<DocumentHandle> {
    await this.init();
    if (await this.exists(doc.id)) throw new DuplicateMigrationError(doc.id);
    return this.#handle(doc.id, doc);
  }

  #handle(id: string, doc: MigrationDocument): DocumentHandle {
    const adapter = new AtomicJSONFile<MigrationDocument>(this.file(id), { fsync: this.#fsync !== 'never' });
    const db = new Low<MigrationDocument>(adapter, doc);
    db.data = doc;
    const policy = this.#fsync;
    return {
      get data() {
        return db.data;
      },
      save: (options = {}) => adapter.writeWith(db.data, policy === 'always' || (policy === 'barriers' && options.durable === true)),
    };
  }

  async lock(id: string): Promise<() => Promise<void>> {
    await this.init();
    return acquireLock(id, this.file(id), join(this.locksDir, `${id}.lock`), join(this.locksDir, `${id}.owner.json`));
  }

  async ids(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.migrationsDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
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
  async scan<T>(map: (m: ListedMigration) => T): Promise<T[]> {
    const ids = await this.ids();
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
        out.push(map({ id, doc: parseDocument(text, file) }));
      } catch (e) {
        if (e instanceof StateDocumentError) out.push(map({ id, error: e }));
        else throw e;
      }
    }
    return out;
  }
}

export function parseDocument(text: string, file: string): MigrationDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new StateDocumentError('corrupt', file, `${file} is not valid JSON (${(e as Error).message}); it was left untouched. Restore it from a backup or remove it.`);
  }
  return validateDocument(raw, file);
}
