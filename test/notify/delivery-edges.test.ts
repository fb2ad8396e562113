/**
 * Delivery edges found in review:
 * 1. an attempt cut short by our own shutdown (the run's AbortSignal) is not an attempt of the
 *    receiver's: not counted, not a failure, never what makes an event dead; the event stays due;
 * 2. a 410 stops this process POSTing to the endpoint even when recording it in the store fails
 *    (and that failure is reported);
 * 3. a `batch.*` event's retry carries the same body bytes as its first attempt, also when the
 *    record lives in PostgreSQL (jsonb: key order not kept) and when it moved there between attempts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { deliverOutbox, deliverPending, endpointKey, notifyOptions, type NotifyOptions } from '../../src/notify/deliver.js';
import { addBatchCompleted, enqueue } from '../../src/notify/events.js';
import { copyStore } from '../../src/store/copy.js';
import type { BatchRecord, OutboxEntry } from '../../src/store/document.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { FileStore, type MigrationStore } from '../../src/store/store.js';
import { tempDir, world, type World } from '../helpers/env.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../helpers/pg.js';
import { Receiver, TEST_SECRET } from '../helpers/receiver.js';

let rx: Receiver;
let w: World | null = null;
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  rx?.release();
  await rx?.stop();
  await w?.close();
  w = null;
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function receiver(): Promise<Receiver> {
  rx = new Receiver();
  await rx.start();
  return rx;
}

const HOUR_AGO = () => new Date(Date.now() - 3_600_000).toISOString();

function batchRecord(id: string): BatchRecord {
  const at = new Date().toISOString();
  return {
    schemaVersion: 1,
    id,
    createdAt: at,
    createdBy: 'tester',
    updatedAt: at,
    options: {},
    rows: [{ line: 1, phone: '+16315551000', migrationId: `${id}-m1`, sourceWabaId: '1111', destWabaId: '2222', businessId: null }],
    groupChecks: [],
    cancelled: null,
  };
}

/** A batch with a pending `batch.completed` (created at `at`), saved in `store`. */
async function pendingBatch(store: MigrationStore, id: string, at = new Date().toISOString()): Promise<OutboxEntry> {
  const b = batchRecord(id);
  const e = addBatchCompleted(b, { total: 1, completed: 1, failed: 0, blocked: 0, cancelled: 0, unfinished: 0 }, at);
  await store.saveBatch(b);
  return e;
}

/** `store` whose `disableEndpoint` fails while `broken.on` is true. */
function failingDisable<S extends MigrationStore>(store: S, broken: { on: boolean; calls: number }): S {
  return new Proxy(store, {
    get(target, key) {
      if (key === 'disableEndpoint')
        return async (...args: Parameters<MigrationStore['disableEndpoint']>) => {
          broken.calls++;
          if (broken.on) throw new Error('EIO: disk went away');
          return target.disableEndpoint(...args);
        };
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe('1. an attempt our own shutdown aborts is not an attempt', () => {
  it('deliverOutbox: not counted, no error, still due, not dead (even past --notify-give-up-ms), nothing saved', async () => {
    await receiver();
    rx.answer = () => 'hang';
    rx.hangMs = 30_000;
    const created = HOUR_AGO();
    const o: OutboxEntry[] = [];
    enqueue(o, 'migration.started', { i: 0 }, created);
    const ac = new AbortController();
    const opts: NotifyOptions = { ...notifyOptions({ url: rx.url, secret: TEST_SECRET, giveUpMs: 1000 }), signal: ac.signal };
    let saves = 0;
    const pass = deliverOutbox(o, opts, async () => {
      saves++;
    });
    await rx.stalled();
    ac.abort();
    const r = await pass;
    expect(rx.requests).toBe(1);
    expect(o[0]).toMatchObject({ attempts: 0, dead: false, deliveredAt: null, lastError: null, nextAttemptAt: created });
    expect(r).toMatchObject({ failed: 0, dead: 0, gone: false });
    expect(saves).toBe(0);
  });

  it('deliverPending (work, notify deliver): the stored event is unchanged', async () => {
    await receiver();
    rx.answer = () => 'hang';
    rx.hangMs = 30_000;
    const store = new FileStore(await tempDir());
    const created = HOUR_AGO();
    await pendingBatch(store, 'b1', created);
    const ac = new AbortController();
    const pass = deliverPending(store, { ...notifyOptions({ url: rx.url, secret: TEST_SECRET, giveUpMs: 1000 }), signal: ac.signal });
    await rx.stalled();
    ac.abort();
    const s = await pass;
    expect(rx.requests).toBe(1);
    expect(s).toMatchObject({ failed: 0, dead: 0, pending: 1 });
    const [e] = (await store.loadBatch('b1')).outbox!;
    expect(e).toMatchObject({ attempts: 0, dead: false, deliveredAt: null, lastError: null, nextAttemptAt: created });
  });

  it('a run interrupted while its POST is in flight leaves the event as it was (not dead with --notify-give-up-ms)', async () => {
    w = await world();
    await receiver();
    rx.answer = () => 'hang';
    rx.hangMs = 30_000;
    const ac = new AbortController();
    const notify = notifyOptions({ url: rx.url, secret: TEST_SECRET, giveUpMs: 1 });
    const run = w
      .engine({ notify, signal: ac.signal })
      .start(w.startRequest({ id: 'm1', phone: '+16315553201' }))
      .catch((e: unknown) => e);
    await rx.stalled();
    ac.abort();
    await run;
    const doc = await w.store.load('m1');
    const first = doc.outbox![0]!;
    expect(first.type).toBe('migration.started');
    expect(first).toMatchObject({ attempts: 0, dead: false, deliveredAt: null, lastError: null, nextAttemptAt: first.createdAt });
  });
});

describe('2. a 410 the store could not record still stops this process POSTing to the endpoint', () => {
  it('a run: no second POST to the endpoint (nor from a later run of this process); the failure to record is in lastError', async () => {
    w = await world();
    await receiver();
    rx.answer = () => '410';
    const broken = { on: true, calls: 0 };
    const store = failingDisable(w.store, broken);
    const notify = notifyOptions({ url: rx.url, secret: TEST_SECRET });
    await w.engine({ notify, store }).start(w.startRequest({ id: 'm1', phone: '+16315553211' }));
    expect(broken.calls).toBeGreaterThan(0);
    expect(rx.requests).toBe(1);
    const m1 = await w.store.load('m1');
    expect(m1.outbox!.length).toBeGreaterThanOrEqual(2);
    expect(m1.outbox!.every((e) => e.deliveredAt === null && !e.dead)).toBe(true);
    expect(m1.outbox![0]!.lastError).toMatch(/410 Gone.*could not record the endpoint as disabled.*EIO: disk went away/);
    // Another run in the same process (a batch run drives many): still nothing POSTed.
    await w.engine({ notify, store }).start(w.startRequest({ id: 'm2', phone: '+16315553212' }));
    expect(rx.requests).toBe(1);
  });

  it('deliverPending: the pass stops, the failure is in problems, later passes do not POST, and the 410 is recorded once the store takes it', async () => {
    await receiver();
    rx.answer = () => '410';
    const file = new FileStore(await tempDir());
    const broken = { on: true, calls: 0 };
    const store = failingDisable(file, broken);
    await pendingBatch(file, 'b1');
    await pendingBatch(file, 'b2');
    const notify = notifyOptions({ url: rx.url, secret: TEST_SECRET });
    const s = await deliverPending(store, notify);
    expect(rx.requests).toBe(1);
    expect(s.gone).toBe(true);
    expect(s.problems.join('\n')).toMatch(/410 Gone.*could not record the endpoint as disabled.*EIO: disk went away/);
    expect(s.disabledEndpoint).toMatchObject({ key: endpointKey(notify.url) });
    expect(s.pending).toBe(2);
    const first = (await file.listBatches()).flatMap((b) => b.outbox!).find((e) => e.attempts > 0)!;
    expect(first.lastError).toMatch(/could not record the endpoint as disabled/);

    // The next pass of this process (work's worker) POSTs nothing either.
    const again = await deliverPending(store, notify);
    expect(again).toMatchObject({ attempted: 0, disabled: true });
    expect(rx.requests).toBe(1);
    expect(await file.disabledEndpoints()).toEqual([]);
    // Once the store takes writes again, the 410 is recorded (so `notify list` shows it and
    // `notify enable` can lift it), still without a POST.
    broken.on = false;
    await deliverPending(store, notify);
    expect(rx.requests).toBe(1);
    expect(await file.disabledEndpoints()).toMatchObject([{ key: endpointKey(notify.url), eventId: first.id, owner: `batch:${first.payload.data.batchId}` }]);
  });
});

describe.skipIf(!pgAvailable)('3. batch.* bodies are the same bytes on every attempt (PostgreSQL: jsonb)', () => {
  let db: TestDatabase;
  async function pgStore(): Promise<PostgresStore> {
    db = await createTestDatabase('notify_edges');
    const s = new PostgresStore(db.url, { fsync: 'never' });
    cleanup.push(async () => {
      await s.close();
      await db.drop();
    });
    return s;
  }

  it('a retry from PostgreSQL sends the first attempt\'s bytes', async () => {
    await receiver();
    rx.answer = (n) => (n === 1 ? '500' : 'ok');
    const store = await pgStore();
    await pendingBatch(store, 'b1');
    const notify = notifyOptions({ url: rx.url, secret: TEST_SECRET });
    await deliverPending(store, notify);
    const s = await deliverPending(store, { ...notify, now: () => Date.now() + 60_000 });
    expect(s.delivered).toBe(1);
    expect(rx.deliveries.map((d) => d.answer)).toEqual(['500', 'ok']);
    expect(rx.deliveries[1]!.body).toBe(rx.deliveries[0]!.body);
  });

  it('also when the record moved from a file store to PostgreSQL between attempts (store copy)', async () => {
    await receiver();
    rx.answer = (n) => (n === 1 ? '500' : 'ok');
    const file = new FileStore(await tempDir());
    await pendingBatch(file, 'b1');
    const notify = notifyOptions({ url: rx.url, secret: TEST_SECRET });
    await deliverPending(file, notify);
    const store = await pgStore();
    await copyStore(file, store);
    const s = await deliverPending(store, { ...notify, now: () => Date.now() + 60_000 });
    expect(s.delivered).toBe(1);
    expect(rx.deliveries.map((d) => d.answer)).toEqual(['500', 'ok']);
    expect(rx.deliveries[1]!.body).toBe(rx.deliveries[0]!.body);
  });
});
