/**
 * A lowdb adapter that writes each document atomically and durably: write-file-atomic writes a
 * temporary file, fsyncs it and renames it over the old one, so a crash (or a SIGKILL in the
 * middle of a write) leaves either the old or the new document, never a torn one. lowdb's own
 * JSONFile (steno) renames but never fsyncs, which loses the last write on power failure.
 */
import { readFile } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import type { Adapter } from 'lowdb';

export class AtomicJSONFile<T> implements Adapter<T> {
  constructor(
    readonly filename: string,
    private readonly options: { fsync: boolean } = { fsync: true },
  ) {}

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.filename, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    return JSON.parse(text) as T;
  }

  async write(data: T): Promise<void> {
    await writeFileAtomic(this.filename, JSON.stringify(data), { mode: 0o600, fsync: this.options.fsync });
  }
}
