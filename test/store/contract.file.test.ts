/** The store contract against FileStore (lowdb, one JSON file per migration). */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStore } from '../../src/store/store.js';
import { tempDir } from '../helpers/env.js';
import { storeContract } from './contract.js';

const dirs: string[] = [];

storeContract('FileStore', {
  store: async () => {
    const dir = await tempDir('waba-contract-');
    dirs.push(dir);
    return new FileStore(dir, { fsync: 'never' });
  },
  second: async (s) => new FileStore((s as FileStore).dir, { fsync: 'never' }),
  tamper: async (s, id, edit) => {
    const file = (s as FileStore).file(id);
    const doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    edit(doc);
    await writeFile(file, JSON.stringify(doc));
  },
  // The file store's lease is lost when its lock file is removed or replaced.
  breakLease: async (s, id) => {
    await rm(join((s as FileStore).locksDir, `${id}.lock`));
  },
  cleanup: async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  },
});
