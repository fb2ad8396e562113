/** The per-migration lock and the document store. */
import { spawn } from 'node:child_process';
import { readdir, readFile, utimes, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/store.js';
import { MigrationLockedError } from '../../src/store/lock.js';
import { StateDocumentError } from '../../src/store/document.js';
import { tempDir, world, type World } from '../helpers/env.js';

let w: World | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

describe('lock', () => {
  it('one holder at a time; the loser learns the holder’s pid and host', async () => {
    const store = new FileStore(await tempDir());
    const lease = await store.lock('m1');
    const err = await store.lock('m1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationLockedError);
    expect((err as MigrationLockedError).owner?.pid).toBe(process.pid);
    expect((err as Error).message).toMatch(new RegExp(`process ${process.pid} on \\S+ since`));
    expect((await store.holder('m1'))?.pid).toBe(process.pid);
    await lease.release();
    expect(await store.holder('m1')).toBeNull();
    const again = await store.lock('m1');
    await again.release();
  });

  it('a lock left by a SIGKILLed process is recovered at once', async () => {
    const dir = await tempDir();
    const script = `
      import { FileStore } from ${JSON.stringify(new URL('../../dist/src/store/store.js', import.meta.url).href)};
      await new FileStore(${JSON.stringify(dir)}).lock('m1');
      console.log('locked');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const store = new FileStore(dir);
    await expect(store.lock('m1')).rejects.toThrow(new RegExp(`process ${child.pid}`));
    // Readers can tell who holds it, without taking it.
    expect((await store.holder('m1'))?.pid).toBe(child.pid);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    expect(await store.holder('m1')).toBeNull();
    const t0 = Date.now();
    const lease = await store.lock('m1');
    expect(Date.now() - t0).toBeLessThan(1000);
    await lease.release();
  });
});

describe('store', () => {
  it('writes atomically with mode 0600 and reads back what it wrote', async () => {
    w = await world();
    await w.engine().start(w.startRequest());
    const file = join(w.dir, 'migrations', 'm1.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const doc = await w.store.load('m1');
    expect(doc.schemaVersion).toBe(1);
    expect(doc.state).toBe('awaiting_code');
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(doc);
  });

  it('lists every document and reports damaged ones instead of skipping them', async () => {
    w = await world();
    await w.engine().start(w.startRequest({ id: 'a' }));
    await w.engine().start(w.startRequest({ id: 'b', phone: '+16315552000', confirm: [] }));
    await writeFile(join(w.dir, 'migrations', 'c.json'), '{');
    const listed = await w.store.list();
    expect(listed.map((m) => m.id)).toEqual(['a', 'b', 'c']);
    expect(listed[2]!.error).toBeInstanceOf(StateDocumentError);
    expect(listed[2]!.error!.problem).toBe('corrupt');
    expect((await w.engine().list()).map((v) => [v.id, v.state])).toEqual([
      ['a', 'awaiting_code'],
      ['b', 'blocked'],
    ]);
  });

  it('reading never creates the state directory', async () => {
    const dir = join(await tempDir(), 'not-yet');
    const store = new FileStore(dir);
    expect(await store.list()).toEqual([]);
    await expect(stat(dir)).rejects.toThrow();
  });
});

describe('throttle files', () => {
  it('a damaged pause file and a crashed write’s temp file are removed once untouched for an hour, not before', async () => {
    const store = new FileStore(await tempDir(), { fsync: 'never' });
    const now = Date.now();
    await store.recordThrottle({ key: '100', until: now + 60_000, code: 80007 }); // creates the directory
    const dir = store.throttlesDir;
    const hoursAgo = (h: number) => new Date(now - h * 3_600_000);
    await writeFile(join(dir, '201.json'), '{"key": "201", "unt'); // damaged, old
    await utimes(join(dir, '201.json'), hoursAgo(2), hoursAgo(2));
    await writeFile(join(dir, '202.json'), 'not json'); // damaged, recent: may be someone's doing right now
    await writeFile(join(dir, '203.json.4242.7.tmp'), '{}'); // a crashed write's temp, old
    await utimes(join(dir, '203.json.4242.7.tmp'), hoursAgo(2), hoursAgo(2));
    await writeFile(join(dir, '204.json.4242.8.tmp'), '{}'); // a write in progress
    await writeFile(join(dir, 'notes.txt'), 'left by a person'); // not ours: never touched
    await utimes(join(dir, 'notes.txt'), hoursAgo(2), hoursAgo(2));
    // A damaged file is no pause, and listing it fails nothing.
    expect((await store.throttles(0)).map((t) => t.key)).toEqual(['100']);
    await store.recordThrottle({ key: '300', until: now + 60_000, code: 4 });
    expect((await readdir(dir)).sort()).toEqual(['100.json', '202.json', '204.json.4242.8.tmp', '300.json', 'notes.txt']);
  });
});

describe('watch', () => {
  it('a watch that cannot start makes watching() fail with the reason, instead of never reporting', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'migrations'), 'not a directory');
    const s = new FileStore(dir);
    const stop = s.watch(() => {});
    await expect(s.watching()).rejects.toThrow(/cannot watch .*migrations for changes/);
    stop();
  });
});
