/**
 * Rate limits as a resource: the sandbox's limiter, the client's per-WABA budget, shared group
 * checks, and GET retries, against the real sandbox on loopback.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BatchRunner } from '../../src/batch/index.js';
import { shareThrottles } from '../../src/batch/throttles.js';
import { GraphClient } from '../../src/graph/client.js';
import { RateBudget, ThrottledError } from '../../src/graph/rate-budget.js';
import { nextAction } from '../../src/runner/view.js';
import { SandboxRateLimiter } from '../../src/sandbox/index.js';
import { FAST_POLICY, FIXTURES, world, type World } from '../helpers/env.js';

let w: World | null = null;
afterEach(async () => {
  await w?.close();
  w = null;
});

const csv = (n: number, from = 3000) =>
  `phone,source_waba,dest_waba,confirm\n${Array.from({ length: n }, (_, i) => `+1631555${from + i},${FIXTURES.sourceWabaId},${FIXTURES.destWabaId},two_step_disabled`).join('\n')}\n`;

/** Submits the latest code of every number still awaiting one. */
async function submitCodes(w: World, runner: BatchRunner, id: string) {
  const latest = new Map<string, string>();
  for (const o of w.sandbox.outbox) latest.set(o.phone, o.code);
  const text = `phone,code\n${[...latest].map(([p, c]) => `${p},${c}`).join('\n')}\n`;
  return runner.codes(id, text, { pin: '246810' });
}

describe('sandbox rate limiter', () => {
  it('counts per WABA per window, reports usage on every answer, refuses past the limit with 80007', () => {
    const l = new SandboxRateLimiter({ calls: 3, windowMs: 60_000 });
    const a = [l.take('1'), l.take('1'), l.take('1'), l.take('1')];
    expect(a.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(JSON.parse(a[0]!.headers['x-business-use-case-usage']!)['1'][0].call_count).toBeCloseTo(33.33, 1);
    const refused = JSON.parse(a[3]!.headers['x-business-use-case-usage']!)['1'][0];
    expect(refused.call_count).toBe(100);
    expect(refused.estimated_time_to_regain_access).toBeGreaterThan(0);
    expect(l.take('2').allowed).toBe(true); // another WABA keeps going
    expect(a[0]!.headers['x-app-usage']).toBeDefined();
  });

  it('the rate_limited scenario answers 80007 past the limit, with the regain time', async () => {
    w = await world({ scenario: 'rate_limited', rateLimit: { calls: 2, windowMs: 60_000 } });
    const c = new GraphClient({ token: FIXTURES.token, baseUrl: w.url });
    await c.getWaba(FIXTURES.destWabaId);
    await c.getWaba(FIXTURES.destWabaId);
    const e = await c.getWaba(FIXTURES.destWabaId).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 80007, transient: true });
    expect((e as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(1_000);
    expect(w.sandbox.counters['GET waba']!.calls).toBe(3); // a throttling answer is not retried by the transport
  });
});

describe('rate budget', () => {
  it('pauses only the throttled WABA, until the time Meta gave; a long pause throws before sending', async () => {
    const b = new RateBudget();
    b.throttled('111', 80007, 5_000);
    expect(b.pausedUntil('111')).toBeGreaterThan(Date.now() + 4_000);
    expect(b.pausedUntil('222')).toBeNull();
    const release = await b.acquire('222', { maxWaitMs: 0 });
    release();
    const e = await b.acquire('111', { maxWaitMs: 1_000 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ThrottledError);
    expect((e as Error).message).toMatch(/^throttled by Meta's rate limit on WABA 111 until \d\d:\d\d:\d\d UTC; nothing was sent/);
  });

  it('waits out a short pause, then probes with one call at a time', async () => {
    const b = new RateBudget();
    b.throttled('111', 4, 150);
    const t0 = Date.now();
    const r1 = await b.acquire('111');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    let second = false;
    const p2 = b.acquire('111').then((r) => ((second = true), r));
    await new Promise((r) => setTimeout(r, 30));
    expect(second).toBe(false); // probing: one in flight
    b.observe({ 'x-business-use-case-usage': JSON.stringify({ '111': [{ call_count: 5, estimated_time_to_regain_access: 0 }] }) });
    r1();
    (await p2)();
    expect(second).toBe(true);
  });

  it('a pause longer than the run waits leaves the migration in waiting_retry, saying so; nothing sent to that WABA', async () => {
    w = await world();
    const budget = new RateBudget();
    budget.throttled(FIXTURES.destWabaId, 80007, 120_000);
    const until = budget.pausedUntil(FIXTURES.destWabaId)!;
    const paths: string[] = [];
    const v = await w.engine({ rateBudget: budget, maxWaitMs: 1_000, onCall: (c) => paths.push(c.path) }).start(w.startRequest());
    expect(v.state).toBe('waiting_retry');
    expect(Date.parse(v.retry!.retryAt)).toBeGreaterThanOrEqual(until);
    expect(v.nextAction).toMatch(/^throttled by Meta's rate limit on WABA 200000000000002 until \d\d:\d\d:\d\d UTC; `waba-migrate work` continues it then/);
    expect(paths.filter((p) => p.includes(FIXTURES.destWabaId))).toEqual([]);
    // Another process reads the same sentence from the document.
    const { getView } = await import('../../src/runner/read.js');
    expect((await getView(w.store, 'm1')).nextAction).toBe(v.nextAction);
  });

  it('status names the throttle: WABA and time', () => {
    const at = Date.UTC(2026, 10, 23, 10, 42, 5);
    const doc = {
      id: 'm1',
      state: 'waiting_retry',
      input: { destWabaId: '222', phone: '+16315551000' },
      snapshot: { context: { retry: { step: 'creating', retryAt: at, error: { message: '(#80007) Rate limit hit', code: 80007 } } } },
    } as never;
    expect(nextAction(doc)).toMatch(/^throttled by Meta's rate limit on WABA 222 until 10:42:05 UTC \(code 80007\); `waba-migrate work` continues it then/);
  });
});

describe('batches against a rate-limited sandbox', () => {
  it('no WABA is pushed past its limit twice in a window; every number completes once', async () => {
    w = await world({ rateLimit: { calls: 20, windowMs: 1_000 } });
    const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', timeoutMs: 2_000, concurrency: 6 });
    const n = 12;
    const s = await runner.start(csv(n), { id: 'rl' });
    expect(s.counts.awaiting_code).toBe(n);
    const { summary } = await submitCodes(w, runner, 'rl');
    expect(summary.counts.completed).toBe(n);
    expect(w.sandbox.limiter!.maxAllowedPerWindow()).toBeLessThanOrEqual(20);
    expect(w.sandbox.limiter!.maxRefusedPerWindow()).toBeLessThanOrEqual(1);
    expect(w.sandbox.limiter!.totalRefused()).toBeGreaterThan(0); // the limit did bind
    for (let i = 0; i < n; i++) {
      expect(w.sandbox.created.get(`1631555${3000 + i}`)).toBe(1);
      expect(w.sandbox.registered.get(`1631555${3000 + i}`)).toBe(1);
    }
  }, 60_000);

  it('a WABA another process was throttled on is paused here too: learnt through the store, not by an 80007 of our own', async () => {
    w = await world();
    // Two processes' budgets on one store.
    const a = new RateBudget();
    const b = new RateBudget();
    const sa = shareThrottles(w.store, a);
    const sb = shareThrottles(w.store, b);
    a.throttled(FIXTURES.destWabaId, 80007, 60_000);
    await sa.stop(); // the record is written
    await sb.refresh();
    expect(b.pausedUntil(FIXTURES.destWabaId)).toBe(a.pausedUntil(FIXTURES.destWabaId));
    expect(b.view().find((v) => v.key === FIXTURES.destWabaId)?.throttled).toBe(0); // not b's own 80007
    await sb.stop();
    // Another host's clock, or a damaged record, cannot hold a WABA longer than Meta's longest window.
    const c = new RateBudget();
    c.learnPause('777', Date.now() + 30 * 24 * 3_600_000, 80007);
    expect(c.pausedUntil('777')! - Date.now()).toBeLessThanOrEqual(3_600_000);
    expect(c.pausedUntil('777')! - Date.now()).toBeGreaterThan(3_500_000);
  });

  it('a batch waits for a pause recorded by another process before its first call to that WABA', async () => {
    w = await world();
    const until = Date.now() + 1_200;
    await w.store.recordThrottle({ key: FIXTURES.destWabaId, until, code: 80007 });
    const calls: { at: number; path: string }[] = [];
    const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', timeoutMs: 2_000, concurrency: 2, onCall: (c) => calls.push({ at: Date.parse(c.at), path: c.path }) });
    const s = await runner.start(csv(2), { id: 'shared' });
    expect(s.counts.awaiting_code).toBe(2);
    expect(calls.length).toBeGreaterThan(0);
    expect(Math.min(...calls.map((c) => c.at))).toBeGreaterThanOrEqual(until);
  });

  it('group checks run once per group per batch run and each migration records the reference', async () => {
    w = await world();
    const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', concurrency: 4 });
    const s = await runner.start(csv(8), { id: 'grp' });
    expect(s.counts.awaiting_code).toBe(8);
    // One read of the business and one of each WABA for all eight numbers.
    expect(w.sandbox.counters['GET business']!.calls).toBe(1);
    expect(w.sandbox.counters['GET waba']!.calls).toBe(2);
    expect(s.groupChecks).toHaveLength(1);
    const ref = (s.groupChecks[0] as { ref?: string }).ref!;
    expect(ref).toMatch(/^batch:grp#auto:200000000000001:200000000000002@/);
    const h = await runner.engine.history('grp-1');
    const checksDone = h.find((e) => e.event.type.endsWith('.checks'))!;
    expect(checksDone.event.groupCheck).toBe(ref);
    // The destination's numbers were listed once for the group too: no per-number call here.
    expect(checksDone.calls).toEqual([]);
    expect(w.sandbox.counters['GET phone_numbers']!.calls).toBe(2); // the destination's list and the source's, once each
    expect((await runner.store.loadBatch('grp')).groupChecks[0]!.checks).toHaveLength(4);
  });

  it('a failing group check blocks every number of the group, naming the check', async () => {
    w = await world({ scenario: 'no_payment_method' });
    const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester' });
    const s = await runner.start(csv(3), { id: 'blk' });
    expect(s.counts.blocked).toBe(3);
    expect(s.needsPerson.map((r) => r.need)).toEqual(['fix_prerequisites', 'fix_prerequisites', 'fix_prerequisites']);
    expect(s.needsPerson[0]!.nextAction).toMatch(/payment_method \(fail\)/);
  });
});

describe('GET retries in the client', () => {
  it('an idempotent GET that fails transiently is retried (bounded); a POST is sent once', async () => {
    let gets = 0;
    let posts = 0;
    const server = createServer((req, res) => {
      if (req.method === 'GET') gets++;
      else posts++;
      const fail = req.method === 'POST' || gets <= 2;
      res.writeHead(fail ? 500 : 200, { 'content-type': 'application/json' });
      res.end(fail ? JSON.stringify({ error: { message: 'boom', type: 'OAuthException', code: 2, is_transient: true } }) : JSON.stringify({ id: '1', name: 'w' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const c = new GraphClient({ token: 't', baseUrl: url });
      await expect(c.getWaba('1')).resolves.toMatchObject({ id: '1' });
      expect(gets).toBe(3);
      await expect(c.requestCode('1', { code_method: 'SMS', language: 'en_US' })).rejects.toMatchObject({ code: 2 });
      expect(posts).toBe(1);
      gets = -100; // keeps failing: gives up after 3 tries
      await expect(c.getWaba('1')).rejects.toMatchObject({ code: 2 });
      expect(gets).toBe(-97);
    } finally {
      server.close();
    }
  });
});

void FAST_POLICY;
