/**
 * Delivery of one outbox against a real loopback receiver, on an injected clock (no sleeps):
 * Meta's linear schedule (n × backoff, capped, going on at the cap), Retry-After, 410, give-up
 * age, timeouts and resets, and order within a migration.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { applyOutcome, backoffDelayMs, deliverOutbox, notifyOptions, parseRetryAfter, RunNotifier, type NotifyOptions } from '../../src/notify/deliver.js';
import { enqueue } from '../../src/notify/events.js';
import type { MigrationDocument, OutboxEntry } from '../../src/store/document.js';
import { Receiver, TEST_SECRET, type Answer } from '../helpers/receiver.js';

let rx: Receiver;
let now: number;
let opts: NotifyOptions;
const noSave = async () => {};

beforeEach(async () => {
  rx = new Receiver();
  await rx.start();
  now = Date.now();
  opts = { ...notifyOptions({ url: rx.url, secret: TEST_SECRET }), now: () => now };
});
afterEach(async () => {
  await rx.stop();
});

function outbox(n: number): OutboxEntry[] {
  const o: OutboxEntry[] = [];
  for (let i = 0; i < n; i++) enqueue(o, 'migration.started', { i }, new Date(now).toISOString());
  return o;
}

describe('the linear schedule (seed 003: callback_backoff_delay_ms / max_callback_backoff_delay_ms)', () => {
  it('is n × 3000 ms after the n-th failure, capped at 900000 ms, and stays at the cap', () => {
    expect([1, 2, 3, 4, 10].map((n) => backoffDelayMs(n))).toEqual([3000, 6000, 9000, 12000, 30000]);
    expect(backoffDelayMs(299)).toBe(897_000);
    expect(backoffDelayMs(300)).toBe(900_000);
    expect(backoffDelayMs(301)).toBe(900_000);
    expect(backoffDelayMs(10_000)).toBe(900_000);
    // The same through the entry bookkeeping, failure after failure, with nothing ever dead.
    const [e] = outbox(1);
    let t = now;
    const delays: number[] = [];
    for (let n = 1; n <= 320; n++) {
      applyOutcome(e!, { ok: false, status: 500, error: 'HTTP 500', retryAfterMs: null, gone: false }, opts, t);
      const next = Date.parse(e!.nextAttemptAt);
      delays.push(next - t);
      t = next;
    }
    expect(delays.slice(0, 3)).toEqual([3000, 6000, 9000]);
    expect(delays[299]).toBe(900_000);
    expect(delays.slice(300).every((d) => d === 900_000)).toBe(true);
    expect(e!.dead).toBe(false);
    expect(e!.attempts).toBe(320);
  });

  it('over HTTP: not sent before it is due, then at exactly 3 s, 6 s, 9 s … later, until the receiver recovers', async () => {
    const failures: Answer[] = ['500', 'reset', '500', { status: 503 }];
    rx.answer = (n) => (n <= 4 ? failures[n - 1]! : 'ok');
    const o = outbox(1);
    const t0 = now;
    const attemptsAt: number[] = [];
    for (let step = 0; step < 200 && o[0]!.deliveredAt === null; step++) {
      const r = await deliverOutbox(o, opts, noSave);
      if (r.attempted) attemptsAt.push(now - t0);
      now += 500; // the clock moves in half seconds; nothing sleeps
    }
    expect(attemptsAt).toEqual([0, 3000, 9000, 18000, 30000]);
    expect(o[0]!.deliveredAt).not.toBeNull();
    expect(o[0]!.attempts).toBe(4);
    expect(rx.badSignatures).toEqual([]);
    // Every attempt carried the same id and body; each was signed afresh.
    expect(new Set(rx.deliveries.map((d) => d.id))).toEqual(new Set([o[0]!.id]));
    expect(new Set(rx.deliveries.map((d) => d.body)).size).toBe(1);
  });

  it('honours Retry-After (seconds or a date) when it asks for longer than the schedule', async () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(new Date(now + 60_000).toUTCString(), now)).toBeGreaterThan(58_000);
    expect(parseRetryAfter('soon', now)).toBeNull();
    rx.answer = (n) => (n === 1 ? { status: 429, retryAfter: '120' } : n === 2 ? { status: 503, retryAfter: '1' } : 'ok');
    const o = outbox(1);
    await deliverOutbox(o, opts, noSave);
    expect(Date.parse(o[0]!.nextAttemptAt) - now).toBe(120_000);
    now += 120_000;
    await deliverOutbox(o, opts, noSave);
    // Retry-After shorter than the schedule: the schedule (2 × 3 s) wins.
    expect(Date.parse(o[0]!.nextAttemptAt) - now).toBe(6000);
  });

  it('times out a receiver that does not answer in time, and retries', async () => {
    rx.answer = (n) => (n === 1 ? 'hang' : 'ok');
    rx.hangMs = 2000;
    opts.timeoutMs = 200;
    const o = outbox(1);
    const r = await deliverOutbox(o, opts, noSave);
    expect(r.failed).toBe(1);
    expect(o[0]!.lastError).toMatch(/no answer within 200 ms/);
    now += 3000;
    await deliverOutbox(o, opts, noSave);
    expect(o[0]!.deliveredAt).not.toBeNull();
  });
});

describe('order, 410 and give-up', () => {
  it('never sends an event before the earlier ones of its outbox are delivered', async () => {
    rx.answer = (n) => (n <= 2 ? '500' : 'ok');
    const o = outbox(3);
    for (let i = 0; i < 20; i++) {
      await deliverOutbox(o, opts, noSave);
      now += 1000;
    }
    expect(o.every((e) => e.deliveredAt !== null)).toBe(true);
    // Arrivals: the first event (failing twice, then accepted), then the second, then the third.
    expect(rx.deliveries.map((d) => d.id)).toEqual([o[0]!.id, o[0]!.id, o[0]!.id, o[1]!.id, o[2]!.id]);
  });

  it('410 Gone: the event stays pending (not dead, still due), the pass stops, the rest stay pending', async () => {
    rx.answer = () => '410';
    const o = outbox(2);
    const due = o[0]!.nextAttemptAt;
    const r = await deliverOutbox(o, opts, noSave);
    expect(r).toMatchObject({ attempted: 1, dead: 0, failed: 1, gone: true });
    expect(o[0]!.dead).toBe(false);
    expect(o[0]!.deliveredAt).toBeNull();
    expect(o[0]!.nextAttemptAt).toBe(due); // no backoff: it goes as soon as the endpoint is enabled
    expect(o[0]!.lastError).toMatch(/410 Gone: the receiver disabled this endpoint.*notify enable/);
    expect(o[1]!.dead).toBe(false);
    expect(o[1]!.attempts).toBe(0);
  });

  it('gives up on an event older than the give-up age: dead, and the next one goes', async () => {
    opts.giveUpMs = 10_000;
    rx.answer = (_n, p) => (p.data.i === 0 ? '500' : 'ok');
    const o = outbox(2);
    for (let i = 0; i < 30 && !o[1]!.deliveredAt; i++) {
      await deliverOutbox(o, opts, noSave);
      now += 1000;
    }
    expect(o[0]!.dead).toBe(true);
    // Attempts at 0, 3, 9 s (younger than 10 s: rescheduled) and 18 s (older: dead).
    expect(o[0]!.lastError).toMatch(/gave up after 4 attempts/);
    expect(o[1]!.deliveredAt).not.toBeNull();
  });
});

describe('delivery beside a run', () => {
  it('retries a failed event when it is due while the run lasts, and never sends past what is written', async () => {
    rx.answer = (n) => (n === 1 ? '500' : 'ok');
    const doc = { outbox: outbox(2) } as unknown as MigrationDocument;
    const n = new RunNotifier(doc, { ...opts, now: Date.now, backoffMs: 30, maxBackoffMs: 30 });
    n.kick(1); // only the first event is on disk so far
    await vi.waitFor(() => expect(rx.accepted.length).toBe(1), { timeout: 10_000, interval: 10 });
    expect(rx.requests).toBe(2); // failed, then retried by the timer: no write came in between
    expect(doc.outbox![1]!.deliveredAt).toBeNull(); // not written yet: not sent
    let saved = 0;
    n.kick(2);
    await n.finish(async () => void saved++);
    expect(rx.accepted.map((d) => d.id)).toEqual([doc.outbox![0]!.id, doc.outbox![1]!.id]);
    expect(saved).toBe(1);
  });

  it('a retry timer that fires before its clock says the event is due comes back later instead of giving up', async () => {
    // A clock at half speed: every timer fires "early" by that clock, as Node's timers can by a
    // millisecond against Date.now(). The event must still go once it is due.
    rx.answer = (n) => (n === 1 ? '500' : 'ok');
    const start = Date.now();
    const slow = () => start + (Date.now() - start) / 2;
    const doc = { outbox: outbox(1) } as unknown as MigrationDocument;
    const n = new RunNotifier(doc, { ...opts, now: slow, backoffMs: 40, maxBackoffMs: 40 });
    n.kick(1);
    await vi.waitFor(() => expect(rx.accepted.length).toBe(1), { timeout: 10_000, interval: 10 });
    expect(rx.requests).toBe(2);
    expect(slow() - start).toBeGreaterThanOrEqual(40); // not sent before it was due by its clock
    await n.finish(async () => {});
  });
});
