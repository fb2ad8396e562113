/**
 * Issue 13's remaining guarantees, against real migrations (engine + sandbox), a real store and a
 * loopback receiver that verifies every signature:
 * - a 410 disables the endpoint in the store: no process POSTs to it until it is enabled again;
 *   events wait pending (not dead) and are shown as "endpoint disabled (410 at …)";
 * - a slow receiver never keeps a run out of its migration: the POST holds only the delivery lock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { deliverPending, disabledFor, displayEndpoint, endpointKey, notifyOptions, type NotifyOptions } from '../../src/notify/deliver.js';
import { getView } from '../../src/runner/read.js';
import { world, type World } from '../helpers/env.js';
import { Receiver, TEST_SECRET } from '../helpers/receiver.js';

let w: World;
let rx: Receiver;
afterEach(async () => {
  await w?.close();
  await rx?.stop();
});

/** A URL with secrets where receivers put them: a long token in the path and one in the query. */
const SECRET_PATH = 'T0123456789SECRETPATHTOKEN';
const SECRET_QUERY = 'q-s3cret-token-value';

async function setup(): Promise<NotifyOptions> {
  w = await world();
  rx = new Receiver();
  await rx.start();
  return notifyOptions({ url: `${rx.url}/${SECRET_PATH}?auth=${SECRET_QUERY}`, secret: TEST_SECRET });
}

/** What the receiver accepted (at once, or after stalling), of one migration, in arrival order. */
const byMigration = (id: string) => rx.deliveries.filter((d) => (d.answer === 'ok' || d.answer === 'hang') && d.payload.data.migrationId === id).map((d) => d.payload.type);

describe('410 Gone disables the endpoint', () => {
  it('is remembered across runs and migrations: nothing more is POSTed; events stay pending and shown as disabled; enable delivers them in order', async () => {
    const notify = await setup();
    rx.answer = (n) => (n === 1 ? '410' : 'ok'); // 410 once, then it would accept everything
    const engine = w.engine({ notify });
    await engine.start(w.startRequest({ id: 'm1', phone: '+16315553101' }));
    expect(rx.requests).toBe(1);
    const m1 = await w.store.load('m1');
    const [disabled, ...more] = await w.store.disabledEndpoints();
    expect(more).toEqual([]);
    expect(disabled).toMatchObject({ key: endpointKey(notify.url), eventId: m1.outbox![0]!.id, owner: 'm1' });
    expect(Date.parse(disabled!.disabledAt)).toBeGreaterThan(Date.now() - 60_000);
    // Stored without the URL's secrets.
    expect(disabled!.endpoint).toBe(`${new URL(rx.url).origin}/hooks/***?***`);
    expect(JSON.stringify(disabled)).not.toContain(SECRET_PATH);
    expect(JSON.stringify(disabled)).not.toContain(SECRET_QUERY);
    // The event that saw the 410 is not dead: it waits, like the one after it.
    expect(m1.outbox!.map((e) => [e.type, e.dead, e.deliveredAt])).toEqual([
      ['migration.started', false, null],
      ['migration.awaiting_code', false, null],
    ]);

    // Another run, another migration: not POSTed.
    await w.engine({ notify }).start(w.startRequest({ id: 'm2', phone: '+16315553102' }));
    // Another process's pass: not POSTed either, and it says why.
    const s = await deliverPending(w.store, { ...notify, now: () => Date.now() + 3_600_000 });
    expect(s).toMatchObject({ attempted: 0, delivered: 0, disabled: true, pending: 4 });
    expect(s.disabledEndpoint).toEqual(disabled);
    expect(rx.requests).toBe(1);

    // Shown as disabled, not as a failure or dead.
    for (const id of ['m1', 'm2']) {
      const n = (await getView(w.store, id, notify.url)).notifications!;
      expect(n).toMatchObject({ pending: 2, dead: 0, delivered: 0 });
      expect(n.endpointDisabled).toMatchObject({ endpoint: disabled!.endpoint, eventId: disabled!.eventId, disabledAt: disabled!.disabledAt });
      expect(n.endpointDisabled!.label).toBe(`endpoint disabled (410 at ${disabled!.disabledAt})`);
    }
    // Another endpoint is not held back by this one's 410.
    expect((await getView(w.store, 'm2', 'https://other.example.com/hooks')).notifications!.endpointDisabled).toBeNull();

    // Enabled again: everything that waited arrives, in order per migration; the event that
    // saw the 410 comes again with its id.
    expect(await w.store.enableEndpoint(disabled!.key)).toEqual(disabled);
    const after = await deliverPending(w.store, notify);
    expect(after).toMatchObject({ delivered: 4, pending: 0, disabled: false, disabledEndpoint: null });
    expect(byMigration('m1')).toEqual(['migration.started', 'migration.awaiting_code']);
    expect(byMigration('m2')).toEqual(['migration.started', 'migration.awaiting_code']);
    expect(rx.deliveries[0]!.id).toBe(m1.outbox![0]!.id);
    expect(rx.accepted.find((d) => d.payload.data.migrationId === 'm1')!.id).toBe(m1.outbox![0]!.id);
    expect(rx.badSignatures).toEqual([]);
    expect((await getView(w.store, 'm1', notify.url)).notifications).toMatchObject({ pending: 0, delivered: 2, endpointDisabled: null });
  });

  it('a 410 met by `deliverPending` stops the pass and disables the endpoint for the engine too', async () => {
    const notify = await setup();
    rx.answer = () => '500';
    await w.engine({ notify }).start(w.startRequest({ id: 'm1', phone: '+16315553111' }));
    rx.answer = () => '410';
    const s = await deliverPending(w.store, { ...notify, now: () => Date.now() + 60_000 });
    expect(s).toMatchObject({ attempted: 1, gone: true, pending: 2 });
    expect(s.disabledEndpoint).toMatchObject({ owner: 'm1' });
    const requests = rx.requests;
    rx.answer = () => 'ok';
    await w.engine({ notify }).start(w.startRequest({ id: 'm2', phone: '+16315553112' }));
    expect(rx.requests).toBe(requests);
  });

  it('the endpoint as shown: no userinfo, no query, no long path segment; the key is the URL hash', () => {
    expect(displayEndpoint('https://user:pw@hooks.example.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX?sig=abc')).toBe('https://hooks.example.com/services/T0000/B0000/***?***');
    expect(displayEndpoint('https://hooks.example.com/waba')).toBe('https://hooks.example.com/waba');
    expect(endpointKey('https://a.example.com/x?t=1')).not.toBe(endpointKey('https://a.example.com/x?t=2'));
    expect(endpointKey('https://a.example.com/x')).toMatch(/^[0-9a-f]{64}$/);
    const list = [
      { key: endpointKey('https://a.example.com/x'), endpoint: 'a', disabledAt: '2026-01-01T00:00:00.000Z', eventId: 'e1', owner: null },
      { key: endpointKey('https://b.example.com/x'), endpoint: 'b', disabledAt: '2026-01-02T00:00:00.000Z', eventId: 'e2', owner: null },
    ];
    expect(disabledFor(list, 'https://a.example.com/x')?.endpoint).toBe('a');
    expect(disabledFor(list, 'https://c.example.com/x')).toBeNull();
    expect(disabledFor(list)?.endpoint).toBe('b'); // no URL known: the latest
  });
});

describe("a slow receiver never holds the migration's lock", () => {
  it('while a POST stalls for a second, a run on the same migration proceeds; no event is ever sent by two deliverers at once', async () => {
    const notify = await setup();
    rx.answer = () => '500';
    const engine = w.engine({ notify });
    const v = await engine.start(w.startRequest({ id: 'm1', phone: '+16315553121' }));
    expect(v.state).toBe('awaiting_code');
    const before = rx.requests;
    // The pass's first POST stalls until the test releases it (after the run below), whatever
    // the machine's load; 30 s and the pass's timeout are only bounds. The rest are accepted.
    rx.answer = (n) => (n === before + 1 ? 'hang' : 'ok');
    rx.hangMs = 30_000;
    const pass = deliverPending(w.store, { ...notify, timeoutMs: 30_000, now: () => Date.now() + 60_000 });
    const t0 = Date.now();
    while (rx.inFlight === 0) {
      if (Date.now() - t0 > 5000) throw new Error('the deliverer never POSTed');
      await new Promise((r) => setTimeout(r, 5));
    }
    // The POST is in flight: the migration moves on meanwhile (no MigrationLockedError, exit 5).
    const code = w.sandbox.lastCodeFor(v.phoneNumberId!)!.code;
    const done = await engine.submitCode('m1', code, '246810');
    expect(done.state).toBe('completed');
    expect(rx.inFlight).toBe(1); // the stalled POST is still out: the run did not wait for it
    rx.release();
    const s = await pass;
    expect(s.skippedLocked).toEqual([]);
    // Every event arrived, in order, each once after the failed attempts: the run's own events
    // (migration.completed) went through the one deliverer in turn.
    const after = rx.deliveries.slice(before);
    expect(rx.maxInFlight).toBe(1);
    expect(rx.concurrentSameId).toEqual([]);
    const doc = await w.store.load('m1');
    expect(doc.outbox!.map((e) => e.type)).toEqual(['migration.started', 'migration.awaiting_code', 'migration.completed']);
    // Whatever the run could not send (the deliverer held the outbox) goes with the next pass.
    if (doc.outbox!.some((e) => e.deliveredAt === null)) await deliverPending(w.store, notify);
    expect((await w.store.load('m1')).outbox!.every((e) => e.deliveredAt !== null)).toBe(true);
    expect(byMigration('m1')).toEqual(['migration.started', 'migration.awaiting_code', 'migration.completed']);
    expect(after.length).toBeGreaterThanOrEqual(3);
    expect(rx.maxInFlight).toBe(1);
    expect(rx.concurrentSameId).toEqual([]);
    expect(rx.badSignatures).toEqual([]);
  });

  it('a run holds the delivery lock while it delivers: a concurrent pass skips its outbox instead of sending a copy', async () => {
    const notify = await setup();
    // The run's first POST stalls until the concurrent pass below is over (30 s is only a bound):
    // the pass surely runs while the run is delivering, however slow the machine.
    rx.answer = (n) => (n === 1 ? 'hang' : 'ok');
    rx.hangMs = 30_000;
    const engine = w.engine({ notify: { ...notify, timeoutMs: 30_000 } });
    const run = engine.start(w.startRequest({ id: 'm1', phone: '+16315553131' }));
    const t0 = Date.now();
    while (rx.inFlight === 0) {
      if (Date.now() - t0 > 5000) throw new Error('the run never POSTed');
      await new Promise((r) => setTimeout(r, 5));
    }
    const s = await deliverPending(w.store, { ...notify, now: () => Date.now() + 60_000 });
    expect(rx.inFlight).toBe(1); // still stalled: the pass ran while the run was delivering
    rx.release();
    expect(s.skippedLocked).toEqual(['m1']);
    expect(s.attempted).toBe(0);
    await run;
    expect(byMigration('m1')).toEqual(['migration.started', 'migration.awaiting_code']);
    expect(rx.maxInFlight).toBe(1);
    expect(rx.concurrentSameId).toEqual([]);
  });
});
