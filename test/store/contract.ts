/**
 * The MigrationStore contract: one suite, run unchanged against every store
 * (contract.file.test.ts, contract.pg.test.ts). A store passes when these hold.
 */
import { describe, expect, it } from 'vitest';
import { buildInput } from '../../src/runner/engine.js';
import { BatchNotFoundError, StateDocumentError, type BatchRecord, type HistoryEntry, type MigrationDocument } from '../../src/store/document.js';
import { MigrationLockedError, MigrationLockLostError, type Lease } from '../../src/store/lock.js';
import { DuplicateMigrationError, MigrationNotFoundError, type MigrationStore } from '../../src/store/store.js';
import type { StateName } from '../../machines/migration.js';

export interface ContractHarness {
  /** A fresh, empty store. */
  store(): Promise<MigrationStore>;
  /** Another store on the same data, as a second process would open it. */
  second(store: MigrationStore): Promise<MigrationStore>;
  /** Rewrites a stored document behind the store's back (a damaged or copied document). */
  tamper(store: MigrationStore, id: string, edit: (doc: Record<string, unknown>) => void): Promise<void>;
  /** Takes a lease away from its holder the way this store can lose one (file removed, session killed). */
  breakLease(store: MigrationStore, id: string, lease: Lease): Promise<void>;
  cleanup(): Promise<void>;
}

let phoneSeq = 1000;

export function makeDoc(id: string, opts: { state?: StateName; phone?: string; retryAt?: number; updatedAt?: string; history?: number } = {}): MigrationDocument {
  const phone = opts.phone ?? `+163155${String(++phoneSeq).padStart(5, '0')}`;
  const input = buildInput({ id, phone, sourceWabaId: '111', destWabaId: '222' }, 'tester');
  const state = opts.state ?? 'awaiting_code';
  const at = opts.updatedAt ?? new Date().toISOString();
  const context: Record<string, unknown> = {};
  if (opts.retryAt !== undefined) context.retry = { step: 'creating', retryAt: opts.retryAt, error: { message: 'x' } };
  const doc: MigrationDocument = {
    schemaVersion: 1,
    id,
    createdAt: at,
    updatedAt: at,
    state,
    input,
    snapshot: { value: state, context, status: 'active' },
    history: [],
  };
  for (let i = 0; i < (opts.history ?? 1); i++) doc.history.push(entry(doc, state));
  return doc;
}

export function entry(doc: MigrationDocument, to: StateName): HistoryEntry {
  const n = doc.history.length + 1;
  return { n, at: new Date().toISOString(), from: n === 1 ? null : doc.state, to, event: n === 1 ? { type: 'start', phone: doc.input.phone } : { type: 'resume' }, calls: [], by: 'tester' };
}

async function put(store: MigrationStore, doc: MigrationDocument): Promise<void> {
  const lease = await store.lock(doc.id);
  try {
    await (await store.create(doc)).save({ durable: true });
  } finally {
    await lease.release();
  }
}

function batch(id: string): BatchRecord {
  const at = new Date().toISOString();
  return { schemaVersion: 1, id, createdAt: at, createdBy: 'tester', updatedAt: at, options: { concurrency: 2 }, rows: [{ line: 1, phone: '+16315551000', migrationId: 'b-1', sourceWabaId: '111', destWabaId: '222', businessId: null }], groupChecks: [], cancelled: null };
}

export function storeContract(name: string, h: ContractHarness, opts: { skip?: boolean } = {}): void {
  const d = opts.skip ? describe.skip : describe;
  d(`MigrationStore contract: ${name}`, () => {
    const withStore = (fn: (s: MigrationStore) => Promise<void>) => async () => {
      const s = await h.store();
      try {
        await fn(s);
      } finally {
        await s.close();
        await h.cleanup();
      }
    };

    it(
      'creates, saves and loads a document; refuses a taken id; a missing one is not found',
      withStore(async (s) => {
        expect(await s.exists('a1')).toBe(false);
        await expect(s.load('a1')).rejects.toBeInstanceOf(MigrationNotFoundError);
        const doc = makeDoc('a1', { history: 2 });
        await put(s, doc);
        expect(await s.exists('a1')).toBe(true);
        expect(await s.load('a1')).toEqual(doc);
        await expect(s.create(makeDoc('a1'))).rejects.toBeInstanceOf(DuplicateMigrationError);
        expect(s.where).not.toMatch(/:[^/@]*@/); // never a password
      }),
    );

    it(
      'the lock has one holder at a time, across processes; holder() names it without taking it',
      withStore(async (s) => {
        const other = await h.second(s);
        try {
          const lease = await s.lock('l1');
          expect(lease.owner.pid).toBe(process.pid);
          const err = await other.lock('l1').catch((e: unknown) => e);
          expect(err).toBeInstanceOf(MigrationLockedError);
          expect((err as MigrationLockedError).owner?.pid).toBe(process.pid);
          await expect(s.lock('l1')).rejects.toBeInstanceOf(MigrationLockedError); // even from the same process
          expect((await other.holder('l1'))?.pid).toBe(process.pid);
          await lease.assertHeld();
          await lease.release();
          expect(await other.holder('l1')).toBeNull();
          await expect(lease.assertHeld()).rejects.toBeInstanceOf(MigrationLockLostError);
          const again = await other.lock('l1');
          await again.release();
          // The number lock and the batch lock are separate names.
          const n1 = await s.lockNumber('+16315551000');
          await expect(other.lockNumber('+16315551000')).rejects.toBeInstanceOf(MigrationLockedError);
          const b1 = await s.lockBatch('l1'); // same id, different kind: no conflict
          await expect(other.lockBatch('l1')).rejects.toBeInstanceOf(MigrationLockedError);
          await n1.release();
          await b1.release();
        } finally {
          await other.close();
        }
      }),
    );

    it(
      'a number lock taken `with` a migration lock is still its own lock: each refuses others and is released on its own',
      withStore(async (s) => {
        const other = await h.second(s);
        try {
          const m = await s.lock('w1');
          const n = await s.lockNumber('+16315551001', { with: m });
          await expect(other.lockNumber('+16315551001')).rejects.toBeInstanceOf(MigrationLockedError);
          await expect(other.lock('w1')).rejects.toBeInstanceOf(MigrationLockedError);
          await m.release();
          await n.assertHeld({ beforeRequest: true });
          await n.assertHeld();
          await expect(other.lockNumber('+16315551001')).rejects.toBeInstanceOf(MigrationLockedError); // still held
          const m2 = await other.lock('w1'); // the migration is free
          await n.release();
          await expect(n.assertHeld({ beforeRequest: true })).rejects.toBeInstanceOf(MigrationLockLostError);
          const n2 = await other.lockNumber('+16315551001');
          await n2.release();
          await m2.release();
        } finally {
          await other.close();
        }
      }),
    );

    it(
      'a migration named like another kind of lock ("batch-7", "number-1631…", "deliver-migration-m") has its own lock',
      withStore(async (s) => {
        const held = [await s.lockBatch('7'), await s.lockNumber('+16315551000'), await s.lockDelivery('migration', 'm')];
        const mine = [await s.lock('batch-7'), await s.lock('number-16315551000'), await s.lock('deliver-migration-m')];
        for (const l of [...mine, ...held]) await l.release();
      }),
    );

    it(
      'holders() reads every held migration lock at once: the held ones named, the released, the number and batch locks not',
      withStore(async (s) => {
        const other = await h.second(s);
        try {
          const a = await s.lock('h1');
          const b = await s.lock('h2');
          const c = await s.lock('h3');
          await c.release();
          const n = await s.lockNumber('+16315551000');
          const bl = await s.lockBatch('h4');
          const who = await other.holders();
          expect(who('h1')?.pid).toBe(process.pid);
          expect(who('h2')?.pid).toBe(process.pid);
          expect(who('h3')).toBeNull(); // released
          expect(who('h4')).toBeNull(); // a batch lock of the same name is not a migration's
          expect(who('h5')).toBeNull(); // never locked
          await a.release();
          await b.release();
          await n.release();
          await bl.release();
          const after = await other.holders();
          expect(after('h1')).toBeNull();
          expect(after('h2')).toBeNull();
        } finally {
          await other.close();
        }
      }),
    );

    it(
      'a lease taken from its holder fails assertHeld (MigrationLockLostError) and the lock is free for another',
      withStore(async (s) => {
        await put(s, makeDoc('lost1'));
        const lease = await s.lock('lost1');
        await lease.assertHeld();
        await h.breakLease(s, 'lost1', lease);
        await expect(lease.assertHeld()).rejects.toBeInstanceOf(MigrationLockLostError);
        const other = await h.second(s);
        try {
          const l2 = await other.lock('lost1');
          await l2.release();
        } finally {
          await other.close();
        }
        await lease.release();
      }),
    );

    it(
      'a document that is not what it claims is refused: id mismatch, edited input, history gap',
      withStore(async (s) => {
        await put(s, makeDoc('x1', { history: 3 }));
        await h.tamper(s, 'x1', (d) => (d.id = 'x2'));
        const e1 = await s.load('x1').catch((e: unknown) => e);
        expect(e1).toBeInstanceOf(StateDocumentError);
        expect((e1 as StateDocumentError).problem).toBe('invalid');
        expect((e1 as Error).message).toMatch(/claims to be migration "x2"/);
        await put(s, makeDoc('x3', { history: 3 }));
        await h.tamper(s, 'x3', (d) => ((d.input as { phone: string }).phone = '+16315559999'));
        await expect(s.load('x3')).rejects.toBeInstanceOf(StateDocumentError);
        await put(s, makeDoc('x4', { history: 3 }));
        await h.tamper(s, 'x4', (d) => (d.history as unknown[]).splice(1, 1));
        await expect(s.load('x4')).rejects.toThrow(/numbered/);
        // scan reports them instead of skipping them silently
        const listed = await s.scan((m) => [m.id, m.error ? m.error.problem : 'ok']);
        expect(listed).toEqual([
          ['x1', 'invalid'],
          ['x3', 'invalid'],
          ['x4', 'invalid'],
        ]);
      }),
    );

    it(
      'history is append-only and gap-free over many saves',
      withStore(async (s) => {
        const doc = makeDoc('h1', { state: 'checking' });
        const lease = await s.lock('h1');
        const handle = await s.create(doc);
        await handle.save();
        const order: StateName[] = ['creating', 'requesting_code', 'awaiting_code', 'verifying_code', 'registering', 'confirming', 'completed'];
        for (const to of order) {
          const e = entry(handle.data, to);
          handle.data.history.push(e);
          handle.data.state = to;
          handle.data.snapshot = { value: to, context: {}, status: to === 'completed' ? 'done' : 'active' };
          handle.data.updatedAt = e.at;
          await handle.save({ durable: to === 'awaiting_code' });
        }
        await lease.release();
        const back = await s.load('h1');
        expect(back.history.map((x) => x.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        expect(back.history.map((x) => x.to)).toEqual(['checking', ...order]);
        expect(back).toEqual(handle.data);
        // A second writer that reopens it continues the numbering.
        const l2 = await s.lock('h1');
        const h2 = await s.open('h1');
        h2.data.history.push(entry(h2.data, 'completed'));
        await h2.save();
        await l2.release();
        expect((await s.load('h1')).history.map((x) => x.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      }),
    );

    it(
      'byPhone finds every migration of a number',
      withStore(async (s) => {
        await put(s, makeDoc('p1', { phone: '+16315552001', state: 'cancelled' }));
        await put(s, makeDoc('p2', { phone: '+16315552001' }));
        await put(s, makeDoc('p3', { phone: '+16315552002' }));
        expect((await s.byPhone('+16315552001')).map((d) => d.id).sort()).toEqual(['p1', 'p2']);
        expect(await s.byPhone('+16315552003')).toEqual([]);
        // `except` leaves one migration out (the engine asks for the others of a number).
        expect((await s.byPhone('+16315552001', { except: 'p2' })).map((d) => d.id)).toEqual(['p1']);
        expect((await s.byPhone('+16315552002', { except: 'p3' })).map((d) => d.id)).toEqual([]);
        expect((await s.byPhone('+16315552001', { except: 'p3' })).map((d) => d.id).sort()).toEqual(['p1', 'p2']);
        // One that cannot be read is not returned, and not hidden either: onDamaged names it.
        await h.tamper(s, 'p2', (d) => {
          d.state = 'no-such-state';
        });
        const damaged: string[] = [];
        expect((await s.byPhone('+16315552001', { onDamaged: (id) => damaged.push(id) })).map((d) => d.id)).toEqual(['p1']);
        expect(damaged).toEqual(['p2']);
        // The migration left out is not read at all: its damage is not reported either.
        expect((await s.byPhone('+16315552001', { except: 'p2', onDamaged: (id) => damaged.push(id) })).map((d) => d.id)).toEqual(['p1']);
        expect(damaged).toEqual(['p2']);
      }),
    );

    it(
      'listDue: due ones soonest first (ties by id), limited; nextAt is the earliest future one; people-bound ones never',
      withStore(async (s) => {
        const now = Date.now();
        await put(s, makeDoc('d-late', { state: 'waiting_retry', retryAt: now - 1_000 }));
        await put(s, makeDoc('d-early', { state: 'waiting_retry', retryAt: now - 5_000 }));
        await put(s, makeDoc('d-b', { state: 'creating', updatedAt: new Date(now - 3_000).toISOString() }));
        await put(s, makeDoc('d-a', { state: 'creating', updatedAt: new Date(now - 3_000).toISOString() }));
        await put(s, makeDoc('d-future', { state: 'waiting_retry', retryAt: now + 60_000 }));
        await put(s, makeDoc('d-future2', { state: 'waiting_retry', retryAt: now + 30_000 }));
        await put(s, makeDoc('d-person', { state: 'awaiting_code' }));
        await put(s, makeDoc('d-done', { state: 'completed' }));
        const r = await s.listDue(now, 10);
        expect(r.due.map((x) => x.id)).toEqual(['d-early', 'd-a', 'd-b', 'd-late']);
        expect(r.due[0]).toMatchObject({ state: 'waiting_retry', dueAt: now - 5_000, hold: null });
        expect(r.nextAt).toBe(now + 30_000);
        expect((await s.listDue(now, 2)).due.map((x) => x.id)).toEqual(['d-early', 'd-a']);
        expect((await s.listDue(now + 120_000, 10)).nextAt).toBeNull();
        // One that another process holds is not listed (the SKIP LOCKED of workers), until released.
        const other = await h.second(s);
        try {
          const busy = await other.lock('d-a');
          expect((await s.listDue(now, 10)).due.map((x) => x.id)).toEqual(['d-early', 'd-b', 'd-late']);
          await busy.release();
          expect((await s.listDue(now, 10)).due.map((x) => x.id)).toEqual(['d-early', 'd-a', 'd-b', 'd-late']);
        } finally {
          await other.close();
        }
        // A save moves it: once done it is no longer due.
        const l = await s.lock('d-early');
        const hd = await s.open('d-early');
        hd.data.history.push(entry(hd.data, 'completed'));
        hd.data.state = 'completed';
        hd.data.snapshot = { value: 'completed', context: {}, status: 'done' };
        await hd.save();
        await l.release();
        expect((await s.listDue(now, 10)).due.map((x) => x.id)).toEqual(['d-a', 'd-b', 'd-late']);
      }),
    );

    it(
      'claimDue takes the locks of the soonest due ones nobody holds (SKIP LOCKED): never the same one twice, filtered by batch, PIN and exclude',
      withStore(async (s) => {
        const now = Date.now();
        const at = (ms: number) => new Date(now - ms).toISOString();
        await put(s, makeDoc('c-1', { state: 'creating', updatedAt: at(5_000) }));
        await put(s, makeDoc('c-2', { state: 'creating', updatedAt: at(4_000) }));
        await put(s, { ...makeDoc('c-3', { state: 'creating', updatedAt: at(3_000) }), batch: 'bx' } as MigrationDocument);
        const pin = makeDoc('c-4', { state: 'registering', updatedAt: at(2_000) });
        (pin.snapshot.context as Record<string, unknown>).hold = 'pin';
        await put(s, pin);
        await put(s, makeDoc('c-later', { state: 'waiting_retry', retryAt: now + 60_000 }));
        await put(s, makeDoc('c-person', { state: 'awaiting_code' }));
        const other = await h.second(s);
        try {
          const mine = (await s.claimDue(now, 2)).claimed;
          expect(mine.map((c) => c.due.id)).toEqual(['c-1', 'c-2']);
          expect(mine[0]!.due).toMatchObject({ state: 'creating', hold: null });
          await expect(other.lock('c-1')).rejects.toBeInstanceOf(MigrationLockedError); // claimed = locked
          await mine[0]!.lease.assertHeld();
          // The other process gets what is left, never a claimed one; the PIN-held one only with the PIN.
          const theirs = (await other.claimDue(now, 10)).claimed;
          expect(theirs.map((c) => c.due.id)).toEqual(['c-3']);
          for (const c of theirs) await c.lease.release();
          expect((await other.claimDue(now, 10, { withPin: true, exclude: ['c-3'] })).claimed.map((c) => c.due.id)).toEqual(['c-4']);
          expect((await s.claimDue(now, 10, { batch: 'nope' })).claimed).toEqual([]);
          // This process never claims again what it holds itself.
          expect((await s.claimDue(now, 10, { batch: 'bx' })).claimed.map((c) => c.due.id)).toEqual(['c-3']);
          const rest = await s.claimDue(now, 10);
          expect(rest.claimed).toEqual([]);
          expect(rest.nextAt).toBe(now + 60_000); // c-later: when to look again
          await mine[0]!.lease.release();
          const again = (await other.claimDue(now, 10)).claimed;
          expect(again.map((c) => c.due.id)).toEqual(['c-1']);
          for (const c of again) await c.lease.release();
        } finally {
          await other.close();
        }
      }),
    );

    it(
      'a claim and a lock of the same migration racing in one process: exactly one of them gets it',
      withStore(async (s) => {
        const now = Date.now();
        await put(s, makeDoc('x-1', { state: 'creating', updatedAt: new Date(now - 1_000).toISOString() }));
        // The lock starts 0, 1, 2 … microtask turns after the claim: every interleaving of their
        // steps (and of their statements on a shared session) is tried.
        const later = async (turns: number) => {
          for (let i = 0; i < turns; i++) await Promise.resolve();
          return s.lock('x-1');
        };
        for (let round = 0; round < 40; round++) {
          const [claim, lock] = await Promise.allSettled([s.claimDue(now, 5), later(round)]);
          const claimed = claim.status === 'fulfilled' ? claim.value.claimed : [];
          const locked = lock.status === 'fulfilled' ? lock.value : null;
          if (lock.status === 'rejected') expect(lock.reason).toBeInstanceOf(MigrationLockedError);
          expect(claimed.length + (locked ? 1 : 0)).toBe(1);
          for (const c of claimed) await c.lease.release();
          await locked?.release();
        }
      }),
    );

    it(
      'claimDue from two processes at once, round after round: every due migration claimed exactly once',
      withStore(async (s) => {
        const now = Date.now();
        const ids = Array.from({ length: 24 }, (_, i) => `r-${String(i).padStart(2, '0')}`);
        for (const id of ids) await put(s, makeDoc(id, { state: 'creating', updatedAt: new Date(now - 1_000).toISOString() }));
        const other = await h.second(s);
        try {
          for (let round = 0; round < 5; round++) {
            const got: string[] = [];
            const held: { release(): Promise<void> }[] = [];
            // Both ask for a few at a time until nothing is left, concurrently.
            const drain = async (st: typeof s) => {
              for (;;) {
                const c = (await st.claimDue(now, 3)).claimed;
                if (!c.length) return;
                for (const x of c) {
                  got.push(x.due.id);
                  held.push(x.lease);
                }
              }
            };
            await Promise.all([drain(s), drain(other), drain(other)]);
            expect([...got].sort()).toEqual(ids); // each once: none twice, none missed
            for (const l of held) await l.release();
          }
        } finally {
          await other.close();
        }
      }),
    );

    it(
      'scan pages by id (after, limit) in byte order',
      withStore(async (s) => {
        for (const id of ['b', 'a', 'C', 'c-1', 'c.1']) await put(s, makeDoc(id));
        expect(await s.scan((m) => m.id)).toEqual(['C', 'a', 'b', 'c-1', 'c.1']);
        expect(await s.scan((m) => m.id, { after: 'a', limit: 2 })).toEqual(['b', 'c-1']);
      }),
    );

    it(
      'a scan whose map throws stops with that error; the store goes on working',
      withStore(async (s) => {
        for (const id of ['a', 'b', 'c', 'd', 'e']) await put(s, makeDoc(id));
        const seen: string[] = [];
        const boom = new Error('map failed');
        await expect(
          s.scan((m) => {
            seen.push(m.id);
            if (m.id === 'c') throw boom;
            return m.id;
          }),
        ).rejects.toBe(boom);
        expect(seen).toEqual(['a', 'b', 'c']);
        expect(await s.scan((m) => m.id, { withoutHistory: true })).toEqual(['a', 'b', 'c', 'd', 'e']);
        expect((await s.load('d')).id).toBe('d');
      }),
    );

    it(
      'throttles: seen by every process of the store; a later time wins, an earlier one never shortens a pause; only those in force are listed',
      withStore(async (s) => {
        const now = Date.now();
        expect(await s.throttles(now)).toEqual([]);
        await s.recordThrottle({ key: '222', until: now + 60_000, code: 80007 });
        await s.recordThrottle({ key: '222', until: now + 30_000, code: 4 });
        await s.recordThrottle({ key: '333', until: now - 1, code: 80007 });
        expect(await s.throttles(now)).toEqual([{ key: '222', until: now + 60_000, code: 80007 }]);
        const other = await h.second(s);
        try {
          await other.recordThrottle({ key: '222', until: now + 90_000, code: 130429 });
          await other.recordThrottle({ key: '111', until: now + 10_000, code: null });
        } finally {
          await other.close();
        }
        expect(await s.throttles(now)).toEqual([
          { key: '111', until: now + 10_000, code: null },
          { key: '222', until: now + 90_000, code: 130429 },
        ]);
        expect(await s.throttles(now + 90_000)).toEqual([]);
        await expect(s.recordThrottle({ key: '../x', until: now + 1, code: null })).rejects.toThrow(/not valid/);
        // One answer can teach two pauses at once (the usage header's, then the error's): the later stays.
        for (let i = 0; i < 10; i++) {
          const key = String(500 + i);
          await Promise.all([s.recordThrottle({ key, until: now + 60_000, code: null }), s.recordThrottle({ key, until: now + 300_000, code: 80007 })]);
        }
        expect((await s.throttles(now)).filter((t) => Number(t.key) >= 500).map((t) => t.until)).toEqual(Array(10).fill(now + 300_000));
      }),
    );

    it(
      'throttles: a pause that ended more than an hour ago is removed by the next record; a more recent one is kept',
      withStore(async (s) => {
        const now = Date.now();
        await s.recordThrottle({ key: '702', until: now - 30 * 60_000, code: 80007 });
        await s.recordThrottle({ key: '701', until: now - 2 * 3_600_000, code: 80007 });
        // throttles(0) lists every record, ended or not.
        expect((await s.throttles(0)).map((t) => t.key)).toEqual(['701', '702']);
        const other = await h.second(s);
        try {
          await other.recordThrottle({ key: '703', until: now + 60_000, code: 4 });
        } finally {
          await other.close();
        }
        expect((await s.throttles(0)).map((t) => t.key)).toEqual(['702', '703']);
        // Many WABAs recorded at once, by two processes, while an old pause waits to be removed:
        // no record fails or waits on another, and every new pause is kept.
        await s.recordThrottle({ key: '799', until: now - 2 * 3_600_000, code: null });
        const third = await h.second(s);
        try {
          await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? third : s).recordThrottle({ key: String(710 + i), until: now + 60_000, code: 4 })));
        } finally {
          await third.close();
        }
        expect((await s.throttles(0)).map((t) => t.key)).toEqual(['702', '703', ...Array.from({ length: 8 }, (_, i) => String(710 + i))]);
        // A WABA's own record, however old, is replaced by its new pause, not removed.
        await s.recordThrottle({ key: '702', until: now + 120_000, code: null });
        expect((await s.throttles(now)).slice(0, 2)).toEqual([
          { key: '702', until: now + 120_000, code: null },
          { key: '703', until: now + 60_000, code: 4 },
        ]);
      }),
    );

    it(
      'batches: saved whole, loaded, listed, locked; a missing one is not found',
      withStore(async (s) => {
        await expect(s.loadBatch('b1')).rejects.toBeInstanceOf(BatchNotFoundError);
        expect(await s.listBatches()).toEqual([]);
        const b = batch('b1');
        await s.saveBatch(b);
        await s.saveBatch({ ...batch('b0') });
        expect(await s.loadBatch('b1')).toEqual(b);
        b.cancelled = { by: 'tester', at: b.createdAt, reason: 'test' };
        await s.saveBatch(b);
        expect((await s.loadBatch('b1')).cancelled?.reason).toBe('test');
        expect((await s.listBatches()).map((x) => x.id)).toEqual(['b0', 'b1']);
        await expect(s.saveBatch({ ...b, rows: [{ ...b.rows[0]!, phone: 'nope' }] })).rejects.toBeInstanceOf(StateDocumentError);
      }),
    );

    it(
      'watch reports another process’s writes; unsubscribe stops it',
      withStore(async (s) => {
        const seen: string[] = [];
        const stop = s.watch((id) => seen.push(id));
        await s.watching(); // subscribed: the very next write must be reported
        const other = await h.second(s);
        try {
          await put(other, makeDoc('w1'));
          const t0 = Date.now();
          // A bound on waiting for the event, not a guess at when the watch starts.
          while (!seen.includes('w1') && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
          expect(seen).toContain('w1');
          stop();
          await new Promise((r) => setTimeout(r, 50));
          const before = seen.length;
          await put(other, makeDoc('w2'));
          await new Promise((r) => setTimeout(r, 200));
          expect(seen.length).toBe(before);
        } finally {
          await other.close();
        }
      }),
    );

    it(
      'the delivery lock: one holder across processes, separate from the migration lock, per kind',
      withStore(async (s) => {
        const other = await h.second(s);
        try {
          const d1 = await s.lockDelivery('migration', 'dl1');
          const err = await other.lockDelivery('migration', 'dl1').catch((e: unknown) => e);
          expect(err).toBeInstanceOf(MigrationLockedError);
          expect((err as Error).message).toMatch(/notifications of migration dl1 is in use/);
          await expect(s.lockDelivery('migration', 'dl1')).rejects.toBeInstanceOf(MigrationLockedError);
          // A run may hold the migration's lock meanwhile (and the other way round), and a batch
          // of the same id is another name.
          const m1 = await other.lock('dl1');
          const b1 = await other.lockDelivery('batch', 'dl1');
          await expect(s.lockDelivery('batch', 'dl1')).rejects.toBeInstanceOf(MigrationLockedError);
          await d1.release();
          const d2 = await other.lockDelivery('migration', 'dl1');
          await Promise.all([d2.release(), m1.release(), b1.release()]);
          expect(await s.holder('dl1')).toBeNull();
          await expect(s.lockDelivery('migration', '../x')).rejects.toThrow(/not valid/);
        } finally {
          await other.close();
        }
      }),
    );

    it(
      'disabled endpoints: recorded once (the first 410 stays), seen by every process, enabled again',
      withStore(async (s) => {
        const other = await h.second(s);
        const key = 'a'.repeat(64);
        const key2 = 'b'.repeat(64);
        try {
          expect(await s.disabledEndpoints()).toEqual([]);
          expect(await s.enableEndpoint(key)).toBeNull();
          const first = { key, endpoint: 'https://hooks.example.com/***', disabledAt: '2026-11-23T10:00:00.000Z', eventId: 'evt_1', owner: 'm1' };
          expect(await s.disableEndpoint(first)).toEqual(first);
          // A second 410 (another process, another event) keeps the first record.
          expect(await other.disableEndpoint({ ...first, disabledAt: '2026-11-23T10:05:00.000Z', eventId: 'evt_2', owner: 'm2' })).toEqual(first);
          const second = { key: key2, endpoint: 'https://b.example.com/hooks', disabledAt: '2026-11-23T11:00:00.000Z', eventId: 'evt_3', owner: 'batch:b1' };
          await other.disableEndpoint(second);
          expect(await s.disabledEndpoints()).toEqual([first, second]);
          expect(await other.enableEndpoint(key)).toEqual(first);
          expect(await s.disabledEndpoints()).toEqual([second]);
          expect(await s.enableEndpoint(key)).toBeNull();
          // After enabling, a new 410 is a new record.
          const again = { ...first, disabledAt: '2026-11-23T12:00:00.000Z', eventId: 'evt_4' };
          expect(await s.disableEndpoint(again)).toEqual(again);
          await expect(s.disableEndpoint({ ...first, key: 'not-a-hash' })).rejects.toThrow(/key/);
        } finally {
          await other.close();
        }
      }),
    );

    it(
      '200 rounds of 2–4 concurrent contenders for one lock: never two holders',
      withStore(async (s) => {
        const stores = [s, await h.second(s), await h.second(s), await h.second(s)];
        try {
          let doubles = 0;
          let rounds = 0;
          for (let round = 0; round < 200; round++) {
            const k = 2 + (round % 3);
            let holding = 0;
            let maxHolding = 0;
            const results = await Promise.allSettled(
              stores.slice(0, k).map(async (st) => {
                const lease = await st.lock('race');
                holding++;
                maxHolding = Math.max(maxHolding, holding);
                await new Promise((r) => setImmediate(r));
                return lease;
              }),
            );
            const won = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Lease>[];
            for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(MigrationLockedError);
            if (won.length > 1 || maxHolding > 1) doubles++;
            expect(won.length).toBe(1);
            for (const w of won) {
              holding--;
              await w.value.release();
            }
            rounds++;
          }
          expect(rounds).toBe(200);
          expect(doubles).toBe(0);
        } finally {
          for (const st of stores.slice(1)) await st.close();
        }
      }),
      60_000,
    );
  });
}
