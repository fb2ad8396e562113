/** The dashboard's index: kept current by writes (from any engine) and by the clock. */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { LiveIndex } from '../../src/server/live.js';
import { world, type World } from '../helpers/env.js';

let w: World;
let index: LiveIndex | undefined;
afterEach(async () => {
  index?.stop();
  await w?.close();
});

it('rewords a next action when a resend becomes possible, with no write', async () => {
  w = await world();
  await w.engine().start(w.startRequest({ id: 'clock-1', policy: { resendCooldownMs: 60_000 } }));
  // The index's clock, moved by the test: how long the run above took under load changes nothing.
  let offset = 0;
  index = new LiveIndex(w.store, { sweepMs: 50, now: () => Date.now() + offset });
  await index.start();
  expect(index.get('clock-1')!.nextAction).toMatch(/resend possible after/);
  offset += 60_000;
  await expect.poll(() => index!.get('clock-1')!.nextAction, { timeout: 3_000 }).toMatch(/resend possible now/);
});

it('a clock that passes the resend time between the wording and the refresh time still rewords it', async () => {
  w = await world();
  await w.engine().start(w.startRequest({ id: 'clock-2', policy: { resendCooldownMs: 60_000 } }));
  const doc = await w.store.load('clock-2');
  const resendAt = (doc.snapshot.context as { code: { resendAllowedAt: number } }).code.resendAllowedAt;
  // A clock one millisecond before the resend time that moves a millisecond each time it is read
  // (as the real one can between two reads): a summary and its refresh time taken from two
  // readings would say "after" and keep no time to refresh at (the code's stale time at best).
  let t = resendAt - 1;
  index = new LiveIndex(w.store, { sweepMs: 20, now: () => t++ });
  await index.start();
  expect(index.get('clock-2')!.nextAction).toMatch(/resend possible after/);
  t = resendAt + 1_000;
  await expect.poll(() => index!.get('clock-2')!.nextAction, { timeout: 3_000 }).toMatch(/resend possible now/);
});

it('follows documents that appear, break and vanish, and counts by state', async () => {
  w = await world();
  index = new LiveIndex(w.store, { sweepMs: 50 });
  await index.start();
  expect(index.size).toBe(0);
  const events: string[] = [];
  index.subscribe((t) => events.push(`${t.id}:${t.from}->${t.to}`));
  await w.engine().start(w.startRequest({ id: 'a-1' }));
  // The index hears of writes through the store's watch (inotify), asynchronously: these polls
  // wait for that event, which a loaded machine can hold back past expect.poll's default 1 s.
  const event = { timeout: 10_000 };
  await expect.poll(() => index!.get('a-1')?.state, event).toBe('awaiting_code');
  expect(index.counts().awaiting_code).toBe(1);
  expect(events[0]).toBe('a-1:null->checking');
  expect(events.at(-1)).toBe('a-1:requesting_code->awaiting_code');
  const file = join(w.dir, 'migrations', 'a-1.json');
  await writeFile(file, '{ torn');
  await expect.poll(() => index!.problems.has('a-1'), event).toBe(true);
  await rm(file);
  await expect.poll(() => index!.problems.has('a-1'), event).toBe(false);
  expect(index.get('a-1')).toBeUndefined();
  expect(index.counts().awaiting_code).toBe(0);
});
