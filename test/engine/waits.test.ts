/**
 * The engine tells its caller about every in-process wait (issue 11 item 9: the CLI turns them
 * into countdowns): a retry backoff in waiting_retry, and a call held back by a pause Meta's rate
 * limit asked for. The text the CLI shows for each is checked here too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RateBudget } from '../../src/graph/rate-budget.js';
import type { WaitInfo } from '../../src/runner/engine.js';
import { countdownText } from '../../src/cli/output.js';
import { FIXTURES, world, type World } from '../helpers/env.js';

let w: World | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

describe('onWait', () => {
  it('a retry backoff within --max-wait: kind retry, the step, until, and Meta\'s status and code', async () => {
    w = await world();
    w.sandbox.failNext('POST phone_numbers', 503, { retryAfterSec: 1 });
    const waits: WaitInfo[] = [];
    const before = Date.now();
    const v = await w.engine({ onWait: (x) => waits.push(x) }).start(w.startRequest({ policy: { retryBaseMs: 1, retryCapMs: 10 } }));
    expect(v.state).toBe('awaiting_code');
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatchObject({ id: 'm1', kind: 'retry', step: 'creating', error: { httpStatus: 503, code: 2 } });
    expect(waits[0]!.until).toBeGreaterThanOrEqual(before + 1_000);
    expect(countdownText(waits[0]!, waits[0]!.until - 4_500)).toBe('retrying creating in 5 s (HTTP 503 from Meta, code 2) — Ctrl-C to stop, resume later with: waba-migrate resume m1');
  });

  it('a call held back by a rate-limit pause: kind rate_limit, with the WABA and the code', async () => {
    w = await world();
    const rateBudget = new RateBudget();
    rateBudget.throttled(FIXTURES.destWabaId, 80007, 1_500); // Meta asked for 1.5 s on the destination WABA
    const waits: WaitInfo[] = [];
    const started = Date.now();
    const v = await w.engine({ rateBudget, onWait: (x) => waits.push(x) }).start(w.startRequest());
    expect(v.state).toBe('awaiting_code');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400); // it did wait
    expect(waits.length).toBeGreaterThanOrEqual(1);
    expect(waits.every((x) => x.kind === 'rate_limit' && x.step === 'checking' && x.error.code === 80007)).toBe(true);
    expect(countdownText(waits[0]!, waits[0]!.until - 1_200)).toBe(
      `checking: next call in 2 s (Meta's rate limit on WABA ${FIXTURES.destWabaId}, code 80007) — Ctrl-C to stop, resume later with: waba-migrate resume m1`,
    );
  });

  it('a wait longer than --max-wait is not waited for in-process (no countdown): the run stops in waiting_retry', async () => {
    w = await world();
    w.sandbox.failNext('POST phone_numbers', 503, { retryAfterSec: 5 });
    const waits: WaitInfo[] = [];
    const v = await w.engine({ onWait: (x) => waits.push(x), maxWaitMs: 1_000 }).start(w.startRequest({ policy: { retryBaseMs: 1, retryCapMs: 10 } }));
    expect(v.state).toBe('waiting_retry');
    expect(waits).toEqual([]);
  });
});
