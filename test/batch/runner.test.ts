/** BatchRunner as a library: events per row, list, cancel, a second start with the same id. */
import { afterEach, describe, expect, it } from 'vitest';
import { BatchRunner, type BatchEvent } from '../../src/batch/index.js';
import { FIXTURES, world, type World } from '../helpers/env.js';

let w: World | null = null;
afterEach(async () => {
  await w?.close();
  w = null;
});

const jsonl = (n: number, from = 6000) =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ phone: `+1631555${from + i}`, source_waba: FIXTURES.sourceWabaId, dest_waba: FIXTURES.destWabaId, confirm: ['two_step_disabled'] })).join('\n');

describe('BatchRunner', () => {
  it('JSON Lines, an event per row, list with counts, cancel of every unfinished migration', async () => {
    w = await world();
    const events: BatchEvent[] = [];
    const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', onEvent: (e) => events.push(e) });
    const s = await runner.start(jsonl(3), { id: 'j1' });
    expect(s.counts).toEqual({ awaiting_code: 3 });
    const rows = events.filter((e) => e.type === 'row');
    expect(rows.map((e) => (e as { line: number }).line).sort()).toEqual([1, 2, 3]);
    expect(events.some((e) => e.type === 'group')).toBe(true);
    expect(await runner.list()).toEqual([expect.objectContaining({ id: 'j1', total: 3, cancelled: false, counts: { awaiting_code: 3 } })]);
    const c = await runner.cancel('j1');
    expect(c.counts).toEqual({ cancelled: 3 });
    expect(c.cancelled).toMatchObject({ by: 'tester' });
    await expect(runner.resume('j1')).rejects.toThrow(/was cancelled/);
    // Nothing is sent to Meta by a cancel.
    expect(w.sandbox.counters['POST phone_numbers']!.calls).toBe(3);
  });

  it('start again with the same id continues (no new migration); other rows under that id are refused', async () => {
    w = await world();
    const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester' });
    await runner.start(jsonl(2), { id: 'again' });
    const again = await runner.start(jsonl(2), { id: 'again' });
    expect(again.counts).toEqual({ awaiting_code: 2 });
    expect(w.sandbox.counters['POST phone_numbers']!.calls).toBe(2);
    await expect(runner.start(jsonl(3), { id: 'again' })).rejects.toThrow(/already exists with other rows/);
  });

  it('queues batch.completed (notify) in the record once every row is finished, once', async () => {
    w = await world();
    const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester' });
    await runner.start(jsonl(2), { id: 'done' });
    expect((await w.store.loadBatch('done')).outbox ?? []).toEqual([]);
    const text = `phone,code\n${w.sandbox.outbox.map((o) => `${o.phone},${o.code}`).join('\n')}\n`;
    await runner.codes('done', text, { pin: '246810' });
    const outbox = (await w.store.loadBatch('done')).outbox!;
    expect(outbox.map((e) => e.type)).toEqual(['batch.completed']);
    expect(outbox[0]!.payload).toMatchObject({ data: { batchId: 'done', counts: { total: 2, completed: 2, unfinished: 0 } } });
    await runner.resume('done');
    expect((await w.store.loadBatch('done')).outbox).toHaveLength(1);
  });

  it('status tells each row what it needs, and secrets never reach the batch record', async () => {
    w = await world();
    const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester' });
    await runner.start(jsonl(2), { id: 'needs' });
    const code = w.sandbox.outbox[0]!;
    await runner.codes('needs', `phone,code\n${code.phone},${code.code}\n`);
    const s = await runner.status('needs');
    expect(s.needsPerson.map((r) => r.need).sort()).toEqual(['code', 'pin']);
    const { readFile, readdir } = await import('node:fs/promises');
    for (const dir of ['batches', 'migrations']) {
      for (const f of await readdir(`${w.dir}/${dir}`)) expect(await readFile(`${w.dir}/${dir}/${f}`, 'utf8')).not.toContain(code.code);
    }
  });
});
