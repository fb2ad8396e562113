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
  await w.engine().start(w.startRequest({ id: 'clock-1', policy: { resendCooldownMs: 600 } }));
  index = new LiveIndex(w.store, { sweepMs: 50 });
  await index.start();
  expect(index.get('clock-1')!.nextAction).toMatch(/resend possible after/);
  await expect.poll(() => index!.get('clock-1')!.nextAction, { timeout: 3_000 }).toMatch(/resend possible now/);
});

it('follows documents that appear, break and vanish, and counts by state', async () => {
  w = await world();
  index = new LiveIndex(w.store, { sweepMs: 50 });
  await index.start();
  expect(index.size).toBe(0);
  const events: string[] = [];
  index.subscribe((t) => events.push(`${t.id}:${t.from}->${t.to}`));
  await w.engine().start(w.startRequest({ id: 'a-1' }));
  await expect.poll(() => index!.get('a-1')?.state).toBe('awaiting_code');
  expect(index.counts().awaiting_code).toBe(1);
  expect(events[0]).toBe('a-1:null->checking');
  expect(events.at(-1)).toBe('a-1:requesting_code->awaiting_code');
  const file = join(w.dir, 'migrations', 'a-1.json');
  await writeFile(file, '{ torn');
  await expect.poll(() => index!.problems.has('a-1')).toBe(true);
  await rm(file);
  await expect.poll(() => index!.problems.has('a-1')).toBe(false);
  expect(index.get('a-1')).toBeUndefined();
  expect(index.counts().awaiting_code).toBe(0);
});
