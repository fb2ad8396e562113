/**
 * 50 event-stream clients while 20 migrations run at once against the sandbox: every client gets
 * every transition of every migration, in order per migration, matching the stored history.
 * (The timings of the same load are measured by bench/dashboard.ts, not asserted here.)
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDashboard, type Dashboard } from '../../src/server/app.js';
import { FAST_POLICY, world, type World } from '../helpers/env.js';
import { collectEvents, phoneOf, TOKEN } from './helpers.js';

const CLIENTS = 50;
const MIGRATIONS = 20;
let w: World;
let dashboard: Dashboard;
let url: string;

beforeAll(async () => {
  w = await world();
  dashboard = await createDashboard({ store: w.store, token: TOKEN });
  url = await dashboard.listen('127.0.0.1', 0);
});
afterAll(async () => {
  await dashboard?.close();
  await w?.close();
});

it(`${CLIENTS} SSE clients each receive every transition of ${MIGRATIONS} concurrent migrations`, async () => {
  const tenants = Array.from({ length: MIGRATIONS }, (_, i) => w.sandbox.addTenant(i));
  const ids = tenants.map((_, i) => `load-${String(i).padStart(2, '0')}`);
  const finished = (events: { id: string; to: string }[]) => ids.every((id) => events.some((e) => e.id === id && e.to === 'completed'));
  let open = 0;
  let allOpen!: () => void;
  const ready = new Promise<void>((r) => (allOpen = r));
  const clients = Array.from({ length: CLIENTS }, () =>
    collectEvents<{ id: string; n: number; from: string | null; to: string; seq: number }>(`${url}/api/events`, finished, {
      timeoutMs: 40_000,
      onOpen: () => ++open === CLIENTS && allOpen(),
    }),
  );
  await ready;
  expect((await (await fetch(`${url}/healthz`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()).eventClients).toBe(CLIENTS);

  const engine = w.engine();
  await Promise.all(
    tenants.map(async (t, i) => {
      const v = await engine.start({ id: ids[i], phone: phoneOf(i), sourceWabaId: t.sourceWabaId, destWabaId: t.destWabaId, businessId: t.businessId, confirm: ['two_step_disabled'], policy: FAST_POLICY });
      const done = await engine.submitCode(ids[i]!, w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
      expect(done.state).toBe('completed');
    }),
  );
  const expected = new Map<string, string[]>();
  for (const id of ids) expected.set(id, (await w.store.load(id)).history.map((h) => `${h.n}:${h.from}->${h.to}`));
  const total = [...expected.values()].reduce((n, h) => n + h.length, 0);

  const received = await Promise.all(clients);
  for (const events of received) {
    expect(events.length).toBe(total);
    for (const id of ids) expect(events.filter((e) => e.id === id).map((e) => `${e.n}:${e.from}->${e.to}`)).toEqual(expected.get(id));
    // One sequence for everyone: each client saw the same events in the same order.
    expect(events.map((e) => e.seq)).toEqual(received[0]!.map((e) => e.seq));
  }
});
