/**
 * `work` through the real CLI: graceful shutdown (SIGTERM mid-run → exit 0, locks released, every
 * state valid), PIN-held migrations left alone without the PIN, sleeping until a retry is due.
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BatchRunner, Worker } from '../../src/batch/index.js';
import { UNFINISHED } from '../../src/store/document.js';
import { CLI } from '../helpers/cli.js';
import { FIXTURES, world, type World } from '../helpers/env.js';

let w: World | null = null;
afterEach(async () => {
  await w?.close();
  w = null;
});

const csv = (n: number, from = 5000) =>
  `phone,source_waba,dest_waba,confirm\n${Array.from({ length: n }, (_, i) => `+1631555${from + i},${FIXTURES.sourceWabaId},${FIXTURES.destWabaId},two_step_disabled`).join('\n')}\n`;

/** n migrations of batch `id` waiting for the PIN (codes submitted without one). */
async function heldForPin(w: World, n: number, id = 'b', from = 5000) {
  const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', concurrency: 4 });
  await runner.start(csv(n, from), { id });
  const text = `phone,code\n${w.sandbox.outbox.filter((o) => Number(o.phone.slice(-4)) >= from && Number(o.phone.slice(-4)) < from + n).map((o) => `${o.phone},${o.code}`).join('\n')}\n`;
  const { summary } = await runner.codes(id, text);
  expect(summary.counts.registering).toBe(n);
  return runner;
}

/** A world with one migration resting in waiting_retry, due in `retryMs` (the fault is gone). */
async function waitingRetry(retryMs: number): Promise<World> {
  const w = await world({ faults: { serverError: 1 } });
  const engine = new (await import('../../src/runner/engine.js')).MigrationEngine({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', maxWaitMs: 0 });
  const v = await engine.start(w.startRequest({ policy: { retryBaseMs: retryMs, retryCapMs: retryMs, maxAttemptsPerStep: 10 } }));
  expect(v.state).toBe('waiting_retry');
  w.sandbox.setFaults({});
  return w;
}

describe('work', () => {
  it('without the PIN leaves PIN-held migrations resting; with it, completes them', async () => {
    w = await world();
    await heldForPin(w, 3);
    const base = { store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', once: true };
    const none = await new Worker(base).run();
    expect(none.runs).toBe(0);
    expect(w.sandbox.counters['POST register']?.calls ?? 0).toBe(0);
    const done = await new Worker({ ...base, pin: '246810' }).run();
    expect(done.completed).toBe(3);
    expect(w.sandbox.registered.size).toBe(3);
    // The worker that finished the batch's last row queued its batch.completed notification.
    expect((await w.store.loadBatch('b')).outbox?.map((e) => e.type)).toEqual(['batch.completed']);
  });

  it('learns the pauses other processes recorded before it takes work on, and records its own 80007 for them', async () => {
    w = await waitingRetry(100);
    await new Promise((r) => setTimeout(r, 150)); // due now
    // Another process was told 80007 on every id this migration calls.
    const until = Date.now() + 1_200;
    for (const key of [FIXTURES.businessId, FIXTURES.sourceWabaId, FIXTURES.destWabaId]) await w.store.recordThrottle({ key, until, code: 80007 });
    const calls: number[] = [];
    const report = await new Worker({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', once: true, onCall: (c) => calls.push(Date.parse(c.at)) }).run();
    expect(report.runs).toBe(1);
    expect(calls.length).toBeGreaterThan(0);
    expect(Math.min(...calls)).toBeGreaterThanOrEqual(until);
    // And the other way: a pause this worker learns from Meta is recorded for the others.
    const budget = new (await import('../../src/graph/rate-budget.js')).RateBudget();
    const controller = new AbortController();
    let until2 = 0;
    const worker = new Worker({
      store: w.store,
      token: FIXTURES.token,
      graphUrl: w.url,
      operator: 'tester',
      rateBudget: budget,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type !== 'sleep' || controller.signal.aborted) return;
        budget.throttled('999000', 80007, 120_000); // as an 80007 answer would
        until2 = budget.pausedUntil('999000')!;
        controller.abort();
      },
    });
    await worker.run(); // returns once its writes are done
    expect(until2).toBeGreaterThan(Date.now());
    expect(await w.store.throttles(Date.now())).toContainEqual({ key: '999000', until: until2, code: 80007 });
  });

  it('sleeps until a retry is due (no polling), then drives it', async () => {
    w = await waitingRetry(1_500);
    const controller = new AbortController();
    const events: string[] = [];
    const worker = new Worker({
      store: w.store,
      token: FIXTURES.token,
      graphUrl: w.url,
      operator: 'tester',
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e.type);
        if (e.type === 'done' && e.view.state === 'awaiting_code') controller.abort();
      },
    });
    const before = Object.values(w.sandbox.counters).reduce((a, c) => a + c.calls, 0);
    const t0 = Date.now();
    const report = await worker.run();
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(report.runs).toBe(1); // woke once, for the due retry: no busy loop
    expect(events[0]).toBe('sleep');
    expect(Object.values(w.sandbox.counters).reduce((a, c) => a + c.calls, 0)).toBeGreaterThan(before);
    expect((await w.store.load('m1')).state).toBe('awaiting_code');
  });

  it('SIGTERM mid-run: exit 0, every lock released, every state valid; a rerun finishes', async () => {
    w = await world({ latencyMs: 150 });
    await heldForPin(w, 6);
    const env = { PATH: process.env.PATH ?? '', NO_COLOR: '1', WABA_ACCESS_TOKEN: FIXTURES.token, WABA_GRAPH_URL: w.url, WABA_MIGRATE_STATE_DIR: w.dir, WABA_REGISTER_PIN: '246810' };
    const child = spawn(process.execPath, [CLI, 'work', '--concurrency', '3'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // Stop it once it is mid-run: a register or confirm call in flight.
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if ((w!.sandbox.counters['POST register']?.calls ?? 0) >= 1) {
          clearInterval(t);
          resolve();
        }
      }, 5);
    });
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/SIGTERM: finishing the runs in flight/);
    const all = await w.store.scan((m) => m);
    for (const m of all) {
      expect(m.doc, m.error?.message).toBeDefined();
      expect(await w.store.holder(m.id)).toBeNull();
    }
    expect(all.some((m) => m.doc && UNFINISHED(m.doc.state))).toBe(true); // it really was stopped mid-way
    await w.sandbox.idle();
    // A rerun picks up where it stopped; nothing is registered twice.
    const r = await new Worker({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', once: true, pin: '246810' }).run();
    expect(r.errors).toBe(0);
    const after = await w.store.scan((m) => `${m.id} ${m.doc!.state} ${JSON.stringify((m.doc!.snapshot.context as { hold?: unknown }).hold)} ${m.doc!.history.slice(-2).map((h) => h.event.type).join(',')}`);
    expect(after.filter((s) => !s.includes(' completed '))).toEqual([]);
    for (const n of w.sandbox.registered.values()) expect(n).toBe(1);
  }, 30_000);

  it('--once takes every due migration it wants even when many due ones ahead of them are not its own (another batch)', async () => {
    w = await world();
    await heldForPin(w, 14, 'a', 5000); // due first (older), not this worker's batch
    await heldForPin(w, 2, 'z', 6000);
    const r = await new Worker({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', once: true, pin: '246810', batch: 'z', concurrency: 1 }).run();
    expect(r.completed).toBe(2);
    const states = await w.store.scan((m) => `${(m.doc as { batch?: string }).batch} ${m.doc!.state}`);
    expect(states.filter((x) => x === 'z completed')).toHaveLength(2);
    expect(states.filter((x) => x === 'a registering')).toHaveLength(14);
  }, 30_000);

  it('a long-running worker retries, after its backoff, a migration it found locked elsewhere', async () => {
    w = await world();
    await heldForPin(w, 1);
    const [doc] = await w.store.scan((m) => m.doc!);
    const numberLock = await w.store.lockNumber(doc!.input.phone); // another process runs this number
    const controller = new AbortController();
    const events: string[] = [];
    const worker = new Worker({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', pin: '246810', signal: controller.signal, onEvent: (e) => events.push(e.type) });
    const running = worker.run();
    await vi.waitFor(() => expect(events).toContain('skipped'), { timeout: 10_000, interval: 20 });
    await numberLock.release();
    await vi.waitFor(async () => expect((await w!.store.load(doc!.id)).state).toBe('completed'), { timeout: 10_000, interval: 50 });
    controller.abort();
    const report = await running;
    expect(report.skippedLocked).toBeGreaterThanOrEqual(1);
    expect(report.completed).toBe(1);
  }, 30_000);

  it('two workers share the work: every migration runs once, none twice at the same time', async () => {
    w = await world({ latencyMs: 20 });
    await heldForPin(w, 8);
    const mk = () => new Worker({ store: w!.store, token: FIXTURES.token, graphUrl: w!.url, operator: 'tester', once: true, pin: '246810', concurrency: 4 });
    const [a, b] = await Promise.all([mk().run(), mk().run()]);
    expect(a.errors + b.errors).toBe(0);
    // A second pass finishes anything the first skipped because the other worker held it.
    await mk().run();
    expect((await w.store.scan((m) => m.doc!.state)).every((s) => s === 'completed')).toBe(true);
    for (const n of w.sandbox.registered.values()) expect(n).toBe(1);
  }, 30_000);
});

describe('work and notifications', () => {
  it('a long-running worker delivers events left pending, once the receiver is back, without any migration moving', async () => {
    const { Receiver, TEST_SECRET } = await import('../helpers/receiver.js');
    const { notifyOptions } = await import('../../src/notify/deliver.js');
    const { MigrationEngine } = await import('../../src/runner/engine.js');
    const rx = new Receiver();
    await rx.start();
    try {
      w = await world();
      const notify = notifyOptions({ url: rx.url, secret: TEST_SECRET, backoffMs: 50, maxBackoffMs: 50 });
      rx.answer = () => '500';
      // A run whose POSTs failed: it rests in awaiting_code (nothing for a worker to drive) with two events pending.
      const v = await new MigrationEngine({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', notify }).start(w.startRequest());
      expect(v.state).toBe('awaiting_code');
      expect(rx.accepted).toEqual([]);
      rx.answer = () => 'ok';
      const controller = new AbortController();
      const seen: string[] = [];
      const running = new Worker({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', notify, signal: controller.signal, onEvent: (e) => seen.push(e.type) }).run();
      await vi.waitFor(() => expect(rx.accepted.map((x) => x.payload.type)).toEqual(['migration.started', 'migration.awaiting_code']), { timeout: 10_000, interval: 20 });
      controller.abort();
      const report = await running;
      expect(report.runs).toBe(0); // nothing was driven: the delivery pass alone sent them
      expect(seen).toContain('notify');
      expect(rx.badSignatures).toEqual([]);
    } finally {
      await rx.stop();
    }
  });
});
