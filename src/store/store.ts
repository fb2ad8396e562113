/**
 * lowdb persistence: one JSON document per migration in `<dir>/migrations/<id>.json`, so a
 * write touches one small file however many migrations exist. Locks live in `<dir>/locks/`.
 * The directory is 0700 and documents 0600: they hold business identifiers and history.
 */
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
  /** fsync each document before renaming it into place (default true). */
  fsync?: boolean;
}

/** A document opened for writing: `data` is live, `save()` writes it atomically. */
export interface DocumentHandle {
  readonly data: MigrationDocument;
  save(): Promise<void>;
}

export interface ListedMigration {
  id: string;
  doc?: MigrationDocument;
  error?: StateDocumentError;
}

export class FileStore {
  readonly dir: string;
  readonly migrationsDir: string;
  readonly locksDir: string;
  readonly #fsync: boolean;
  #ready: Promise<void> | null = null;

  constructor(dir: string, options: StoreOptions = {}) {
    this.dir = dir;
    this.migrationsDir = join(dir, 'migrations');
    this.locksDir = join(dir, 'locks');
    this.#fsync = options.fsync ?? true;
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
    const db = new Low<MigrationDocument>(new AtomicJSONFile(this.file(id), { fsync: this.#fsync }), doc);
    db.data = doc;
    return {
      get data() {
        return db.data;
      },
      save: () => db.write(),
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
    const out: (T | undefined)[] = new Array(ids.length);
    let next = 0;
    const worker = async () => {
      while (next < ids.length) {
        const i = next++;
        const id = ids[i]!;
        try {
          out[i] = map({ id, doc: await this.load(id) });
        } catch (e) {
          if (e instanceof StateDocumentError) out[i] = map({ id, error: e });
          else if (!(e instanceof MigrationNotFoundError)) throw e; // vanished since readdir: skip
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, ids.length) }, worker));
    return out.filter((x): x is T => x !== undefined);
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
