/** The engine end to end against the real sandbox (loopback HTTP) and a real state dir. */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { onFileStore, world, type World } from '../helpers/env.js';
import { FIXTURES } from '../../src/sandbox/index.js';
import type { MigrationContext } from '../../machines/migration.js';

let w: World;
afterEach(async () => {
  await w?.close();
});

async function toAwaitingCode(w: World, extra = {}) {
  const engine = w.engine();
  const v = await engine.start(w.startRequest(extra));
  expect(v.state).toBe('awaiting_code');
  expect(v.phoneNumberId).toMatch(/^\d+$/);
  return { engine, v };
}

describe('happy path', () => {
  it('runs start → awaiting_code → code + PIN → completed, with the new phone_number_id', async () => {
    w = await world();
    const { engine, v } = await toAwaitingCode(w);
    expect(v.nextAction).toMatch(/enter the code sent by SMS to \+16315551000/);
    const sms = w.sandbox.lastCodeFor(v.phoneNumberId!)!;
    const done = await engine.submitCode('m1', sms.code, '123456');
    expect(done.state).toBe('completed');
    expect(done.phoneNumberId).toBe(v.phoneNumberId);
    expect(done.warnings.join(' ')).toContain(`new phone_number_id ${v.phoneNumberId}`);
    expect(w.sandbox.created.get('16315551000')).toBe(1);
    expect(w.sandbox.registered.get('16315551000')).toBe(1);
    expect(w.sandbox.findByPhone('+16315551000')?.status).toBe('CONNECTED');
  });

  it('keeps a gap-free, secret-free history with Graph call summaries', async () => {
    w = await world();
    const { engine, v } = await toAwaitingCode(w);
    const code = w.sandbox.lastCodeFor(v.phoneNumberId!)!.code;
    await engine.submitCode('m1', code, '654321');
    const history = await engine.history('m1');
    expect(history[0]).toMatchObject({ n: 1, from: null, to: 'checking', by: 'tester' });
    expect(history[0]!.event).toMatchObject({ type: 'start', confirmations: [{ check: 'two_step_disabled', by: 'tester' }] });
    for (let i = 1; i < history.length; i++) {
      expect(history[i]!.n).toBe(i + 1);
      expect(history[i]!.from).toBe(history[i - 1]!.to);
    }
    const states = history.map((h) => h.to);
    expect(states).toEqual(
      expect.arrayContaining(['checking', 'creating', 'requesting_code', 'awaiting_code', 'verifying_code', 'registering', 'confirming', 'completed']),
    );
    const create = history.flatMap((h) => h.calls).find((c) => c.method === 'POST' && c.path.endsWith('/phone_numbers'))!;
    expect(create).toMatchObject({ status: 200, path: '/v23.0/200000000000002/phone_numbers' });
    expect(create.durationMs).toBeGreaterThanOrEqual(0);
    const text = await w.raw('m1');
    expect(text).not.toContain('654321');
    expect(text).not.toContain('sandbox-token');
    expect(text).not.toMatch(new RegExp(`(?<!\\d)${code}(?!\\d)`));
  });

  it.skipIf(!onFileStore())('writes documents 0600 in a 0700 directory', async () => {
    w = await world();
    await toAwaitingCode(w);
    expect((await stat(w.dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(w.dir, 'migrations'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(w.dir, 'migrations', 'm1.json'))).mode & 0o777).toBe(0o600);
  });
});

describe('one live migration per number', () => {
  it.skipIf(!onFileStore())('refuses a new migration of a number whose other migration cannot be read (it may be live), writing nothing', async () => {
    w = await world();
    await toAwaitingCode(w); // m1, +16315551000, waiting for its code
    await writeFile(join(w.dir, 'migrations', 'm1.json'), '{"damaged": true}');
    const err = await w.engine().start(w.startRequest({ id: 'm2' })).catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ name: 'StateDocumentError' });
    expect((err as Error).message).toMatch(/m1\.json.*\+16315551000 and may still be live/s);
    expect(await w.store.exists('m2')).toBe(false);
    expect(w.sandbox.created.get('16315551000')).toBe(1);
  });
});

describe('prerequisites', () => {
  it.each([
    ['unverified_business', 'business_verified', /verification status is "pending"/, /Complete business verification/],
    ['waba_pending_review', 'wabas_approved', /review status is PENDING/, /must be APPROVED/],
    ['no_payment_method', 'payment_method', /has no payment method/, /Add a payment method/],
  ] as const)('%s → blocked on %s with a remedy', async (scenario, check, detail, remedy) => {
    w = await world({ scenario });
    const v = await w.engine().start(w.startRequest());
    expect(v.state).toBe('blocked');
    const c = v.checks.find((x) => x.name === check)!;
    expect(c.status).toBe('fail');
    expect(c.detail).toMatch(detail);
    expect(c.remedy).toMatch(remedy);
    expect(v.nextAction).toContain(check);
    expect(w.sandbox.counters['POST phone_numbers']).toBeUndefined();
  });

  it('two-step verification blocks until an operator confirms it; the confirmation is in the history', async () => {
    w = await world();
    const engine = w.engine();
    const v = await engine.start(w.startRequest({ confirm: [] }));
    expect(v.state).toBe('blocked');
    const two = v.checks.find((c) => c.name === 'two_step_disabled')!;
    expect(two.status).toBe('unknown');
    expect(two.remedy).toContain('--confirm two_step_disabled');
    const after = await engine.confirmCheck('m1', 'two_step_disabled');
    expect(after.state).toBe('awaiting_code');
    expect(after.checks.find((c) => c.name === 'two_step_disabled')).toMatchObject({ status: 'pass', confirmedBy: 'tester' });
    const h = await engine.history('m1');
    expect(h.find((e) => e.event.type === 'CONFIRM_CHECK')?.event).toMatchObject({ check: 'two_step_disabled', by: 'tester' });
  });

  it('blocked resumes re-run the checks (and stay blocked while the cause remains)', async () => {
    w = await world({ scenario: 'no_payment_method' });
    const engine = w.engine();
    await engine.start(w.startRequest());
    const before = w.sandbox.counters['GET waba']!.calls;
    const v = await engine.resume('m1');
    expect(v.state).toBe('blocked');
    expect(w.sandbox.counters['GET waba']!.calls).toBe(before + 2);
    // fix the cause at "Meta", resume again: it proceeds
    w.sandbox.wabas.get('200000000000002')!.primary_funding_id = '900000000000002';
    expect((await engine.resume('m1')).state).toBe('awaiting_code');
  });

  it('same_business fails when the business does not own a WABA', async () => {
    w = await world();
    w.sandbox.wabas.get('200000000000001')!.owner = '100000000000099';
    const v = await w.engine().start(w.startRequest({ businessId: '100000000000001' }));
    expect(v.state).toBe('blocked');
    expect(v.checks.find((c) => c.name === 'same_business')).toMatchObject({ status: 'fail' });
    expect(v.checks.find((c) => c.name === 'same_business')!.detail).toContain('200000000000001');
  });
});

describe('code handling', () => {
  it('a wrong code returns to awaiting_code with an attempt count; the right one completes', async () => {
    w = await world({ scenario: 'wrong_code' });
    const { engine, v } = await toAwaitingCode(w);
    const code = w.sandbox.lastCodeFor(v.phoneNumberId!)!.code;
    const wrong = await engine.submitCode('m1', code, '123456');
    expect(wrong.state).toBe('awaiting_code');
    expect(wrong.code?.wrongAttempts).toBe(1);
    expect(wrong.nextAction).toContain('1 wrong so far');
    expect((await engine.submitCode('m1', code, '123456')).state).toBe('completed');
  });

  it('too many wrong codes fail with a remedy', async () => {
    w = await world();
    const { engine } = await toAwaitingCode(w, { policy: { maxCodeAttempts: 2, resendCooldownMs: 0 } });
    expect((await engine.submitCode('m1', '000000', '123456')).state).toBe('awaiting_code');
    const v = await engine.submitCode('m1', '000001', '123456');
    expect(v.state).toBe('failed');
    expect(v.failure).toMatchObject({ step: 'verifying_code', code: 136025 });
    expect(v.failure!.remedy).toMatch(/wrong codes/);
  });

  it('an expired code is refused; a resend (voice) brings a fresh one that works', async () => {
    w = await world({ scenario: 'expired_code' });
    const { engine, v } = await toAwaitingCode(w);
    const first = w.sandbox.lastCodeFor(v.phoneNumberId!)!;
    expect((await engine.submitCode('m1', first.code, '123456')).state).toBe('awaiting_code');
    const resent = await engine.resendCode('m1', 'voice');
    expect(resent.state).toBe('awaiting_code');
    expect(resent.code?.method).toBe('VOICE');
    const second = w.sandbox.lastCodeFor(v.phoneNumberId!)!;
    expect(second.method).toBe('VOICE');
    expect((await engine.submitCode('m1', second.code, '123456')).state).toBe('completed');
  });

  it('resend honours the cool-down and says when it becomes possible', async () => {
    w = await world();
    const { engine } = await toAwaitingCode(w, { policy: { resendCooldownMs: 60_000 } });
    await expect(engine.resendCode('m1')).rejects.toThrow(/can be requested after \d{4}-/);
    expect(w.sandbox.counters['POST request_code']!.calls).toBe(1);
  });

  it('a code without a PIN verifies, then waits in registering for the PIN', async () => {
    w = await world();
    const { engine, v } = await toAwaitingCode(w);
    const held = await engine.submitCode('m1', w.sandbox.lastCodeFor(v.phoneNumberId!)!.code);
    expect(held).toMatchObject({ state: 'registering', substate: 'held' });
    expect(held.nextAction).toContain('WABA_REGISTER_PIN');
    expect(held.registerCallsLast72h).toBe(0);
    expect(w.sandbox.counters['POST register']).toBeUndefined();
    const done = await engine.resume('m1', { pin: '123456' });
    expect(done.state).toBe('completed');
  });
});

describe('register allowance', () => {
  it('133016 from Meta fails with the 72 h remedy and is not retried', async () => {
    w = await world({ scenario: 'register_limit' });
    const { engine, v } = await toAwaitingCode(w);
    const f = await engine.submitCode('m1', w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
    expect(f.state).toBe('failed');
    expect(f.failure).toMatchObject({ step: 'registering', code: 133016 });
    expect(f.failure!.fbtraceId).toMatch(/^A/);
    expect(f.failure!.remedy).toMatch(/72 hours/);
    expect(w.sandbox.counters['POST register']!.calls).toBe(1);
  });

  it('the last calls of the allowance need an explicit override', async () => {
    w = await world();
    const { engine, v } = await toAwaitingCode(w, { policy: { registerReserve: 10 } });
    const held = await engine.submitCode('m1', w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
    expect(held).toMatchObject({ state: 'registering', substate: 'held' });
    expect(held.nextAction).toContain('--override-register-limit');
    expect(w.sandbox.counters['POST register']).toBeUndefined();
    const done = await engine.resume('m1', { pin: '123456', overrideRegisterLimit: true });
    expect(done.state).toBe('completed');
    const h = await engine.history('m1');
    expect(h.some((e) => e.event.type === 'OVERRIDE_REGISTER_LIMIT' && e.event.by === 'tester')).toBe(true);
  });
});

describe('reconciliation with Meta', () => {
  it('adopts a number already in the destination WABA instead of creating it again', async () => {
    w = await world();
    const e = w.engine();
    await e.start(w.startRequest({ id: 'first' }));
    // One live migration per number: the first must end before another may start.
    await e.cancel('first', 'operator started over');
    const v = await e.start(w.startRequest({ id: 'second' }));
    expect(v.state).toBe('awaiting_code');
    expect(w.sandbox.created.get('16315551000')).toBe(1);
    const ctx = (await w.store.load('second')).snapshot.context as MigrationContext;
    expect(ctx.adopted).toBe(true);
  });

  it('skips request_code for an already verified number (Meta would answer 136024)', async () => {
    w = await world();
    const { v } = await toAwaitingCode(w);
    w.sandbox.numbers.get(v.phoneNumberId!)!.code_verification_status = 'VERIFIED';
    await w.engine().cancel('m1');
    const v2 = await w.engine().start(w.startRequest({ id: 'again', pin: '123456' }));
    expect(v2.state).toBe('completed');
    expect(w.sandbox.counters['POST request_code']!.calls).toBe(1);
  });

  it('confirms with one page of the destination WABA, newest onboarded first, however many numbers it holds', async () => {
    w = await world();
    // 250 numbers already on the destination WABA: three pages of 100 in creation order.
    for (let i = 0; i < 250; i++) w.sandbox.addSourceNumber(FIXTURES.destWabaId, `+1631555${String(2000 + i).padStart(4, '0')}`);
    const { engine, v } = await toAwaitingCode(w);
    const done = await engine.submitCode('m1', w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
    expect(done.state).toBe('completed');
    const history = await engine.history('m1');
    const confirm = history.find((h) => h.from === 'confirming' && h.to === 'completed')!;
    const pages = confirm.calls.filter((c) => c.method === 'GET' && c.path.endsWith(`/${FIXTURES.destWabaId}/phone_numbers`));
    expect(pages).toHaveLength(1);
  });

  it('warns, without failing, when no app is subscribed to the destination WABA', async () => {
    w = await world({ scenario: 'no_webhooks' });
    const { engine, v } = await toAwaitingCode(w);
    const done = await engine.submitCode('m1', w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
    expect(done.state).toBe('completed');
    expect(done.warnings.join(' ')).toMatch(/subscribed_apps is empty/);
  });
});

describe('errors', () => {
  it('a bad token fails with Meta’s code 190, its fbtrace_id and a remedy', async () => {
    w = await world();
    const v = await w.engine({ token: 'wrong' }).start(w.startRequest());
    expect(v.state).toBe('failed');
    expect(v.failure).toMatchObject({ code: 190, httpStatus: 401, step: 'checking' });
    expect(v.failure!.remedy).toMatch(/access token/);
  });

  it('transient faults are retried with backoff until the migration completes', async () => {
    w = await world({ faults: { serverError: 0.2, rateLimit: 0.1 }, seed: 7 });
    const { engine, v } = await toAwaitingCode(w);
    const done = await engine.submitCode('m1', w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
    expect(done.state).toBe('completed');
    const h = await engine.history('m1');
    expect(h.some((e) => e.to === 'waiting_retry')).toBe(true);
    expect(w.sandbox.created.get('16315551000')).toBe(1);
    expect(w.sandbox.registered.get('16315551000')).toBe(1);
  });

  it('a retry due later than the process will wait returns, with retryAt saved', async () => {
    w = await world({ faults: { serverError: 1 } });
    const v = await w.engine({ maxWaitMs: 0 }).start(w.startRequest({ policy: { retryBaseMs: 60_000, retryCapMs: 60_000 } }));
    expect(v.state).toBe('waiting_retry');
    expect(v.retry?.step).toBe('checking');
    expect(Date.parse(v.retry!.retryAt)).toBeGreaterThan(Date.now());
    // resuming before retryAt with a short patience leaves it waiting, without calling Meta
    const calls = w.sandbox.counters['GET waba']!.calls;
    const again = await w.engine({ maxWaitMs: 0 }).resume('m1');
    expect(again.state).toBe('waiting_retry');
    expect(again.retry?.retryAt).toBe(v.retry?.retryAt);
    expect(w.sandbox.counters['GET waba']!.calls).toBe(calls);
  });
});

describe('cancel', () => {
  it('cancels from awaiting_code without calling Meta', async () => {
    w = await world();
    const { engine } = await toAwaitingCode(w);
    const calls = Object.values(w.sandbox.counters).reduce((a, c) => a + c.calls, 0);
    const v = await engine.cancel('m1');
    expect(v.state).toBe('cancelled');
    expect(Object.values(w.sandbox.counters).reduce((a, c) => a + c.calls, 0)).toBe(calls);
    await expect(engine.cancel('m1')).rejects.toThrow(/already cancelled/);
  });
});

describe('a stop before the start', () => {
  it('a start whose signal is already aborted sends nothing, writes nothing and says so (StartStoppedError, not a TypeError)', async () => {
    w = await world();
    const stop = new AbortController();
    stop.abort(new Error('stopped by SIGTERM'));
    const err = await w.engine({ signal: stop.signal }).start(w.startRequest()).then(() => null, (e: Error) => e);
    expect(err?.name).toBe('StartStoppedError');
    expect(err?.message).toMatch(/before migration m1 was created: nothing was sent or written/);
    expect(Object.keys(w.sandbox.counters)).toEqual([]);
    expect(await w.store.exists('m1')).toBe(false);
    expect(await w.store.byPhone(FIXTURES.phone)).toEqual([]);
    // And the same id and number start normally afterwards.
    expect((await w.engine().start(w.startRequest())).state).toBe('awaiting_code');
  });

  it('a stop that arrives while start takes its locks creates nothing either', async () => {
    w = await world();
    const stop = new AbortController();
    const store = w.store;
    // The stop lands while the number's lock is being taken (after every pre-lock check).
    const racing = new Proxy(store, {
      get(t, k, r) {
        if (k === 'lockNumber')
          return async (...args: Parameters<typeof store.lockNumber>) => {
            stop.abort(new Error('stopped by SIGINT'));
            return t.lockNumber(...args);
          };
        const v = Reflect.get(t, k, r);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    const { MigrationEngine } = await import('../../src/runner/engine.js');
    const engine = new MigrationEngine({ store: racing, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', signal: stop.signal });
    await expect(engine.start(w.startRequest())).rejects.toMatchObject({ name: 'StartStoppedError' });
    expect(Object.keys(w.sandbox.counters).filter((k) => k.startsWith('POST'))).toEqual([]);
    expect(await w.store.exists('m1')).toBe(false);
    expect(await w.store.byPhone(FIXTURES.phone)).toEqual([]);
    expect(await w.store.holder('m1')).toBeNull(); // both locks released
  });
});
