/**
 * Notifications from real migrations: the engine against the sandbox, a real state dir and a
 * loopback receiver that verifies every signature.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { deliverPending, notifyOptions, type NotifyOptions } from '../../src/notify/deliver.js';
import { addBatchCompleted, countStates } from '../../src/notify/events.js';
import { StateDocumentError } from '../../src/store/document.js';
import { FIXTURES, world, type World } from '../helpers/env.js';
import { Receiver, TEST_SECRET } from '../helpers/receiver.js';

let w: World;
let rx: Receiver;
afterEach(async () => {
  await w?.close();
  await rx?.stop();
});

async function setup(sandbox = {}): Promise<NotifyOptions> {
  w = await world(sandbox);
  rx = new Receiver();
  await rx.start();
  return notifyOptions({ url: rx.url, secret: TEST_SECRET });
}

const types = () => rx.accepted.map((d) => d.payload.type);

describe('events of a migration', () => {
  it('started → awaiting_code → completed, in order, signed, with the old and the new phone_number_id', async () => {
    const notify = await setup();
    const engine = w.engine({ notify });
    const v = await engine.start(w.startRequest());
    expect(types()).toEqual(['migration.started', 'migration.awaiting_code']);
    const awaiting = rx.accepted[1]!.payload;
    expect(awaiting).toMatchObject({ type: 'migration.awaiting_code', version: 1, data: { migrationId: 'm1', phone: FIXTURES.phone, phoneNumberId: v.phoneNumberId, reason: 'code_requested' } });
    expect(awaiting.data.verification).toMatchObject({ method: 'SMS', uncertain: false, requestedAt: v.code!.requestedAt, resendAllowedAt: v.code!.resendAllowedAt });
    const code = w.sandbox.lastCodeFor(v.phoneNumberId!)!.code;
    const done = await engine.submitCode('m1', code, '246810');
    expect(done.state).toBe('completed');
    expect(types()).toEqual(['migration.started', 'migration.awaiting_code', 'migration.completed']);
    const completed = rx.accepted[2]!.payload;
    const oldId = `5${FIXTURES.phone.slice(1).padStart(14, '0')}`; // the sandbox's id in the source WABA
    expect(completed.data).toMatchObject({ previousPhoneNumberId: oldId, phoneNumberId: done.phoneNumberId, state: 'completed', previousState: 'confirming' });
    expect(completed.data.phoneNumberId).not.toBe(oldId);
    expect(completed.data.warnings).toEqual(done.warnings);
    // Envelope: id is the webhook-id, timestamp is the transition's time, versioned.
    for (const d of rx.accepted) {
      expect(d.payload.id).toBe(d.id);
      expect(d.payload.id).toMatch(/^evt_[0-9a-f]{32}$/);
      expect(Object.keys(d.payload).sort()).toEqual(['data', 'id', 'timestamp', 'type', 'version']);
    }
    expect(rx.badSignatures).toEqual([]);
    // The outbox is in the document, every entry delivered, in seq order.
    const doc = await w.store.load('m1');
    expect(doc.outbox!.map((e) => [e.seq, e.type, e.deliveredAt !== null])).toEqual([
      [1, 'migration.started', true],
      [2, 'migration.awaiting_code', true],
      [3, 'migration.completed', true],
    ]);
    expect((await engine.get('m1')).notifications).toMatchObject({ pending: 0, dead: 0, delivered: 3 });
  });

  it('no secret in any payload or document: token, PIN, code and the signing secret', async () => {
    const notify = await setup();
    const engine = w.engine({ notify });
    const v = await engine.start(w.startRequest());
    const code = w.sandbox.lastCodeFor(v.phoneNumberId!)!.code;
    await engine.submitCode('m1', code, '975310');
    const bodies = rx.deliveries.map((d) => d.body).join('\n');
    const doc = await readFile(join(w.dir, 'migrations', 'm1.json'), 'utf8');
    const secretB64 = TEST_SECRET.slice(6);
    for (const text of [bodies, doc]) {
      expect(text).not.toContain(FIXTURES.token);
      expect(text).not.toContain('975310');
      expect(text).not.toMatch(new RegExp(`(?<!\\d)${code}(?!\\d)`));
      expect(text).not.toContain(secretB64);
      expect(text).not.toContain(Buffer.from(secretB64, 'base64').toString('utf8'));
    }
    expect(rx.accepted.length).toBe(3);
  });

  it('blocked: the failing checks with their remedies', async () => {
    const notify = await setup({ scenario: 'unverified_business' });
    await w.engine({ notify }).start(w.startRequest());
    expect(types()).toEqual(['migration.started', 'migration.blocked']);
    const failing = rx.accepted[1]!.payload.data.failingChecks as { name: string; status: string; remedy: string }[];
    expect(failing.map((c) => c.name)).toEqual(['business_verified']);
    expect(failing[0]!.remedy).toMatch(/Complete business verification/);
  });

  it("failed: Meta's message, code, fbtrace_id and the remedy", async () => {
    const notify = await setup();
    await w.engine({ notify, token: 'expired-token' }).start(w.startRequest());
    expect(types()).toEqual(['migration.started', 'migration.failed']);
    const d = rx.accepted[1]!.payload.data as { step: string; error: { code: number; fbtraceId: string; message: string }; remedy: string };
    expect(d.step).toBe('checking');
    expect(d.error.code).toBe(190);
    expect(d.error.fbtraceId).toMatch(/^A/);
    expect(d.error.message).toBeTruthy();
    expect(d.remedy).toMatch(/access token is invalid/);
    expect(rx.deliveries.map((x) => x.body).join('')).not.toContain('expired-token');
  });

  it('waiting_retry: the step, when, and the error', async () => {
    const notify = await setup({ faults: { serverError: 1 } });
    const engine = w.engine({ notify, maxWaitMs: 0 });
    // A retry minutes away (full jitter could otherwise draw 0 ms and retry within this run).
    const v = await engine.start(w.startRequest({ policy: { retryBaseMs: 600_000, retryCapMs: 600_000, maxAttemptsPerStep: 5 } }));
    expect(v.state).toBe('waiting_retry');
    expect(types()).toEqual(['migration.started', 'migration.waiting_retry']);
    expect(rx.accepted[1]!.payload.data).toMatchObject({ step: 'checking', retryAt: v.retry!.retryAt, attempt: 1, error: { httpStatus: 500 } });
  });

  it('awaiting_code after a lost request_code answer says the code is uncertain', async () => {
    const notify = await setup();
    w.sandbox.loseNextAnswer('request_code');
    await w.engine({ notify }).start(w.startRequest());
    const a = rx.accepted.find((d) => d.payload.type === 'migration.awaiting_code')!;
    expect((a.payload.data.verification as { uncertain: boolean }).uncertain).toBe(true);
  });

  it('a rejected code: awaiting_code again, reason code_rejected, with the wrong attempts so far', async () => {
    const notify = await setup({ scenario: 'wrong_code' });
    const engine = w.engine({ notify });
    const v = await engine.start(w.startRequest());
    const again = await engine.submitCode('m1', w.sandbox.lastCodeFor(v.phoneNumberId!)!.code);
    expect(again.state).toBe('awaiting_code');
    const last = rx.accepted.at(-1)!.payload;
    expect(last).toMatchObject({ type: 'migration.awaiting_code', data: { reason: 'code_rejected', previousState: 'verifying_code', verification: { wrongAttempts: 1 } } });
  });

  it('cancelled: who and why', async () => {
    const notify = await setup();
    const engine = w.engine({ notify });
    await engine.start(w.startRequest());
    await engine.cancel('m1', 'customer changed their mind');
    expect(types().at(-1)).toBe('migration.cancelled');
    expect(rx.accepted.at(-1)!.payload.data).toMatchObject({ by: 'tester', reason: 'customer changed their mind', previousState: 'awaiting_code' });
  });
});

describe('never ahead of the disk', () => {
  it('when an event arrives, the transition it reports is already in the document on disk', async () => {
    const notify = await setup({ faults: { serverError: 0.3 }, seed: 7 });
    const { readFileSync } = await import('node:fs');
    const violations: string[] = [];
    rx.answer = (_n, p) => {
      const d = p.data as { migrationId: string; historyEntry: number; state: string };
      const onDisk = JSON.parse(readFileSync(join(w.dir, 'migrations', `${d.migrationId}.json`), 'utf8')) as { history: { n: number; to: string }[]; outbox: { id: string }[] };
      const h = onDisk.history[d.historyEntry - 1];
      if (!h || h.to !== d.state || !onDisk.outbox.some((e) => e.id === p.id)) violations.push(`${p.type} #${d.historyEntry}`);
      return 'ok';
    };
    const engine = w.engine({ notify });
    for (const id of ['d1', 'd2', 'd3']) {
      const phone = `+1631555${id === 'd1' ? '3001' : id === 'd2' ? '3002' : '3003'}`;
      let v = await engine.start(w.startRequest({ id, phone }));
      while (v.state === 'waiting_retry') v = await engine.resume(id);
      if (v.state === 'awaiting_code') v = await engine.submitCode(id, w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, '246810');
      while (v.state === 'waiting_retry') v = await engine.resume(id);
      expect(v.state).toBe('completed');
    }
    expect(rx.accepted.length).toBeGreaterThan(9);
    expect(rx.accepted.some((d) => d.payload.type === 'migration.waiting_retry')).toBe(true);
    expect(violations).toEqual([]);
  });
});

describe('delivery when the receiver is down', () => {
  it('the run is not held up; events wait in the document, status shows them, deliverPending sends them in order later', async () => {
    const notify = await setup();
    rx.answer = () => '500';
    // The clock: real time plus an offset the test moves (nothing sleeps).
    let offset = 0;
    const clock = () => Date.now() + offset;
    const engine = w.engine({ notify: { ...notify, now: clock } });
    const v = await engine.start(w.startRequest());
    expect(v.state).toBe('awaiting_code');
    // One attempt (the first event) failed; the second waits behind it.
    expect(rx.requests).toBe(1);
    const view = await engine.get('m1');
    expect(view.notifications).toMatchObject({ pending: 2, dead: 0, delivered: 0 });
    expect(view.notifications!.lastError).toMatch(/HTTP 500/);
    // Not due yet: nothing is sent.
    let s = await deliverPending(w.store, { ...notify, now: clock });
    expect(s).toMatchObject({ attempted: 0, pending: 2 });
    expect(s.nextAt).toBe(Date.parse(view.notifications!.nextAttemptAt!));
    rx.answer = () => 'ok';
    offset += 3000;
    s = await deliverPending(w.store, { ...notify, now: clock });
    expect(s).toMatchObject({ attempted: 2, delivered: 2, pending: 0, nextAt: null });
    expect(types()).toEqual(['migration.started', 'migration.awaiting_code']);
    expect((await engine.get('m1')).notifications).toMatchObject({ pending: 0, delivered: 2 });
  });

  it('a slow receiver does not slow the migration: it reaches awaiting_code before the first answer', async () => {
    const notify = await setup();
    // The first answer stalls until awaiting_code is on disk (30 s and the timeout are only
    // bounds): a run that waited for it would reach awaiting_code only after its POST timed out.
    rx.answer = (n) => (n === 1 ? 'hang' : 'ok');
    rx.hangMs = 30_000;
    // (Its POST may reach the receiver only after that write: released once it has.)
    const onTransition = (t: { to: string }) => {
      if (t.to === 'awaiting_code') void rx.stalled().then(() => rx.release());
    };
    const v = await w.engine({ notify: { ...notify, timeoutMs: 20_000 }, onTransition }).start(w.startRequest());
    expect(v.state).toBe('awaiting_code');
    const doc = await w.store.load('m1');
    const first = Date.parse(doc.history[0]!.at);
    const awaiting = Date.parse(doc.history.find((h) => h.to === 'awaiting_code')!.at);
    // The first event's answer was held until awaiting_code was on disk, and it was delivered
    // (not timed out): the migration did not wait for it.
    expect(rx.deliveries[0]!.answer).toBe('hang');
    expect(doc.outbox![0]!.deliveredAt).not.toBeNull();
    expect(awaiting).toBeGreaterThanOrEqual(first);
    // The run then waited for the answer in flight and sent the rest.
    expect(doc.outbox!.every((e) => e.deliveredAt !== null)).toBe(true);
  });

  it('two deliverers at once never send the same event twice: the second finds the lock taken', async () => {
    const notify = await setup();
    rx.answer = () => '500';
    await w.engine({ notify }).start(w.startRequest({ id: 'm1' }));
    // The first POST of the passes stalls until one pass is over (30 s is only a bound), so the
    // two overlap however slow the machine: the other one is then holding the delivery lock.
    rx.answer = (n) => (n === 2 ? 'hang' : 'ok');
    rx.hangMs = 30_000;
    const later = { ...notify, timeoutMs: 30_000, now: () => Date.now() + 60_000 };
    const both = [deliverPending(w.store, later), deliverPending(w.store, later)];
    const over = await Promise.race(both); // the pass that found the lock taken: the other is stalled
    expect(over.skippedLocked).toEqual(['m1']);
    await rx.stalled(); // the other's POST may not have reached the receiver yet
    rx.release();
    const [a, b] = await Promise.all(both);
    expect(a.delivered + b.delivered).toBe(2);
    expect([...a.skippedLocked, ...b.skippedLocked]).toEqual(['m1']);
    const ids = rx.deliveries.slice(1).map((d) => d.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('skips an outbox whose delivery lock another process holds: the holder delivers', async () => {
    const notify = await setup();
    rx.answer = () => '500';
    await w.engine({ notify }).start(w.startRequest());
    rx.answer = () => 'ok';
    const lease = await w.store.lockDelivery('migration', 'm1');
    try {
      const s = await deliverPending(w.store, { ...notify, now: () => Date.now() + 60_000 });
      expect(s.skippedLocked).toEqual(['m1']);
      expect(s.attempted).toBe(0);
      expect(rx.requests).toBe(1);
    } finally {
      await lease.release();
    }
    const s = await deliverPending(w.store, { ...notify, now: () => Date.now() + 60_000 });
    expect(s.delivered).toBe(2);
  });

  it("a run holding the migration's lock does not stop the POST: the outcome waits unrecorded and the event goes again, same id", async () => {
    const notify = await setup();
    rx.answer = () => '500';
    await w.engine({ notify }).start(w.startRequest());
    rx.answer = () => 'ok';
    const first = (await w.store.load('m1')).outbox![0]!.id;
    const lease = await w.store.lock('m1');
    let s;
    try {
      s = await deliverPending(w.store, { ...notify, now: () => Date.now() + 60_000 });
    } finally {
      await lease.release();
    }
    // Sent, accepted, but not written down: nothing else of m1 was sent after it.
    expect(s).toMatchObject({ attempted: 1, delivered: 0, unrecorded: ['m1'], pending: 2 });
    expect((await w.store.load('m1')).outbox![0]!.deliveredAt).toBeNull();
    s = await deliverPending(w.store, { ...notify, now: () => Date.now() + 60_000 });
    expect(s).toMatchObject({ delivered: 2, pending: 0, unrecorded: [] });
    expect(rx.accepted.map((d) => d.id).filter((id) => id === first)).toHaveLength(2);
    expect(types()).toEqual(['migration.started', 'migration.started', 'migration.awaiting_code']);
  });

  it('a migration with an outbox keeps queueing events in runs without notification settings', async () => {
    const notify = await setup();
    const v = await w.engine({ notify }).start(w.startRequest());
    await w.engine().submitCode('m1', w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, '246810');
    const doc = await w.store.load('m1');
    expect(doc.outbox!.map((e) => e.type)).toEqual(['migration.started', 'migration.awaiting_code', 'migration.completed']);
    expect(doc.outbox![2]!.deliveredAt).toBeNull();
    const s = await deliverPending(w.store, notify);
    expect(s.delivered).toBe(1);
    expect(types().at(-1)).toBe('migration.completed');
  });

  it('a migration run without notifications has no outbox at all', async () => {
    await setup();
    await w.engine().start(w.startRequest());
    const doc = await w.store.load('m1');
    expect(doc.outbox).toBeUndefined();
    expect((await w.engine().get('m1')).notifications).toBeNull();
  });
});

describe('batches and documents', () => {
  it('batch.completed rides in the batch record and is delivered with the rest', async () => {
    const notify = await setup();
    const now = new Date().toISOString();
    const batch = {
      schemaVersion: 1 as const,
      id: 'b1',
      createdAt: now,
      createdBy: 'tester',
      updatedAt: now,
      options: {},
      rows: [{ line: 1, phone: FIXTURES.phone, migrationId: 'm1', sourceWabaId: FIXTURES.sourceWabaId, destWabaId: FIXTURES.destWabaId, businessId: null }],
      groupChecks: [],
      cancelled: null,
    };
    addBatchCompleted(batch, countStates(['completed']));
    await w.store.saveBatch(batch);
    const s = await deliverPending(w.store, notify);
    expect(s.delivered).toBe(1);
    expect(rx.accepted[0]!.payload).toMatchObject({ type: 'batch.completed', data: { batchId: 'b1', counts: { total: 1, completed: 1, failed: 0 }, migrations: ['m1'] } });
    expect((await w.store.loadBatch('b1')).outbox![0]!.deliveredAt).not.toBeNull();
  });

  it('a damaged outbox is reported, never used', async () => {
    const notify = await setup();
    rx.answer = () => '500';
    await w.engine({ notify }).start(w.startRequest());
    const file = join(w.dir, 'migrations', 'm1.json');
    const doc = JSON.parse(await readFile(file, 'utf8'));
    doc.outbox[0].attempts = -1;
    await writeFile(file, JSON.stringify(doc));
    await expect(w.store.load('m1')).rejects.toThrow(StateDocumentError);
    await expect(w.store.load('m1')).rejects.toThrow(/outbox\.0\.attempts/);
    expect((await readdir(join(w.dir, 'migrations'))).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
