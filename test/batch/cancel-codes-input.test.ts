/**
 * Fleet edges found in review (each test failed before its fix): a cancelled batch's migration
 * busy elsewhere during the cancel is cancelled, not driven, by `work`; `batch resume` re-reads the
 * cancel mark under the batch lock; `batch codes` tells a refused code from a submitted one and
 * finishes numbers held for their PIN; a malformed codes file is never echoed; `batch cancel`
 * fails when a migration could not be cancelled.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BatchRunner, Worker } from '../../src/batch/index.js';
import type { MigrationStore } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { FIXTURES, world, type World } from '../helpers/env.js';

let w: World | null = null;
afterEach(async () => {
  await w?.close();
  w = null;
});

const csv = (n: number, from = 7000) =>
  `phone,source_waba,dest_waba,confirm\n${Array.from({ length: n }, (_, i) => `+1631555${from + i},${FIXTURES.sourceWabaId},${FIXTURES.destWabaId},two_step_disabled`).join('\n')}\n`;

const runnerFor = (w: World, extra: Record<string, unknown> = {}) => new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', ...extra });

const codesOf = (w: World) => `phone,code\n${w.sandbox.outbox.map((o) => `${o.phone},${o.code}`).join('\n')}\n`;

describe('batch cancel, batch codes and codes files', () => {
  it('a migration busy elsewhere while its batch is cancelled is not driven on by work afterwards', async () => {
    w = await world();
    const runner = runnerFor(w);
    await runner.start(csv(2), { id: 'cx' });
    // Codes without a PIN: both wait for the PIN, which a worker holding it would register.
    await runner.codes('cx', codesOf(w));
    expect((await runner.status('cx')).counts).toEqual({ registering: 2 });
    // A person's `resume` (or a worker) holds cx-1 at the moment the batch is cancelled.
    const busy = await w.store.lock('cx-1');
    const s = await runner.cancel('cx');
    await busy.release();
    expect(s.cancelled).not.toBeNull();
    // The batch is cancelled; a worker with the PIN must not register its migrations.
    await new Worker({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', once: true, pin: '246810' }).run();
    expect(w.sandbox.counters['POST register']?.calls ?? 0).toBe(0);
    expect((await runner.status('cx')).counts).toEqual({ cancelled: 2 });
  });

  it('batch resume re-checks the cancel mark under the batch lock (a cancel just before it)', async () => {
    w = await world();
    await runnerFor(w).start(csv(2), { id: 'rc' });
    // A cancel lands between resume's check of the mark and its lock of the batch.
    const real = w.store as MigrationStore;
    const canceller = runnerFor(w);
    const racing = new Proxy(real, {
      get(t, k, r) {
        if (k === 'lockBatch')
          return async (id: string) => {
            await canceller.cancel(id);
            return t.lockBatch(id);
          };
        const v = Reflect.get(t, k, r);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    // A row not started yet (as after a `batch start` killed before it): resume would start it.
    const before = w.sandbox.counters['POST phone_numbers']?.calls ?? 0;
    const record = await w.store.loadBatch('rc');
    record.rows.push({ ...record.rows[0]!, line: 4, phone: '+16315557999', migrationId: 'rc-3' });
    await w.store.saveBatch(record);
    const runner = new BatchRunner({ store: racing, token: FIXTURES.token, graphUrl: w.url, operator: 'tester' });
    await expect(runner.resume('rc')).rejects.toThrow(/cancelled/);
    // Nothing of a cancelled batch is started.
    expect(w.sandbox.counters['POST phone_numbers']?.calls ?? 0).toBe(before);
    await expect(w.store.load('rc-3')).rejects.toThrow();
  });

  it('batch codes reports a code Meta refused as refused, not submitted', async () => {
    w = await world();
    const runner = runnerFor(w);
    await runner.start(csv(2), { id: 'wc' });
    const [a, b] = w.sandbox.outbox;
    const wrong = a!.code === '000000' ? '111111' : '000000';
    const { results, summary } = await runner.codes('wc', `phone,code\n${a!.phone},${wrong}\n${b!.phone},${b!.code}\n`);
    expect(summary.counts).toEqual({ awaiting_code: 1, registering: 1 });
    const byPhone = new Map(results.map((r) => [r.phone, r]));
    expect(byPhone.get(b!.phone)!.outcome).toBe('submitted');
    expect(byPhone.get(a!.phone)!).toMatchObject({ outcome: 'refused', state: 'awaiting_code' });
    expect(byPhone.get(a!.phone)!.detail).toMatch(/refused the code/);
  });

  it('batch codes with a PIN finishes the numbers that verified earlier and wait for it (as README says)', async () => {
    w = await world();
    const runner = runnerFor(w);
    await runner.start(csv(2), { id: 'pn' });
    const file = codesOf(w);
    await runner.codes('pn', file); // no PIN: verified, waiting for it
    expect((await runner.status('pn')).counts).toEqual({ registering: 2 });
    const { summary } = await runner.codes('pn', file, { pin: '246810' });
    expect(summary.counts).toEqual({ completed: 2 });
    expect(w.sandbox.counters['POST register']!.calls).toBe(2);
    expect(w.sandbox.counters['POST verify_code']!.calls).toBe(2);
  });

  it('a malformed codes file never echoes a PIN or code in its error', async () => {
    w = await world();
    await runnerFor(w).start(csv(1), { id: 'sx' });
    const runner = runnerFor(w);
    // Python-style quotes in JSON Lines; a stray quote in CSV.
    const jsonl = `{"phone":"+16315557000","code":"123456","pin":'246810'}\n`;
    const err1 = await runner.codes('sx', jsonl, { name: 'codes.jsonl' }).then(() => null, (e: Error) => e);
    expect(err1?.name).toBe('BatchInputError');
    expect(err1!.message).not.toMatch(/246810|123456/);
    const bad = `phone,code,pin\n+16315557000,123456,2468"10\n`;
    const err2 = await runner.codes('sx', bad, { name: 'codes.csv' }).then(() => null, (e: Error) => e);
    expect(err2?.name).toBe('BatchInputError');
    expect(err2!.message).not.toMatch(/2468/);
  });

  it('batch cancel exits non-zero when a migration could not be cancelled (busy elsewhere)', async () => {
    w = await world();
    await runnerFor(w).start(csv(2), { id: 'cc' });
    const busy = await w.store.lock('cc-2');
    try {
      const r = await runCli(['batch', 'cancel', 'cc', '--state-dir', w.dir], {});
      expect(r.code).toBe(5);
      expect(r.stderr + r.stdout).toMatch(/cc-2/);
    } finally {
      await busy.release();
    }
    expect((await w.store.load('cc-1')).state).toBe('cancelled');
  });
});
