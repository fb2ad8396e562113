/**
 * The pure machine, enumerated with xstate/graph: every state is reachable, and every simple path
 * to completed, blocked, failed and cancelled is replayed on a live actor and ends where the
 * enumeration says. Actor outcomes are fed as the done/error events XState would deliver.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, type AnyEventObject } from 'xstate';
import { getShortestPaths, getSimplePaths } from 'xstate/graph';
import { migrationMachine, STATE_NAMES, stateName, type MigrationContext } from '../../machines/migration.js';
import { backoffMs, DEFAULT_POLICY, type CheckResult, type FailureInfo, type MigrationInput } from '../../machines/types.js';

const input: MigrationInput = {
  id: 'm',
  phone: '+16315551000',
  cc: '1',
  nationalNumber: '6315551000',
  sourceWabaId: '1',
  destWabaId: '2',
  businessId: '3',
  codeMethod: 'SMS',
  language: 'en_US',
  verifiedName: null,
  policy: { ...DEFAULT_POLICY, maxAttemptsPerStep: 2, maxCodeAttempts: 2, resendCooldownMs: 0 },
  confirmations: [],
};

/** The On-Premises path (issue 12): one WABA, the number keeps its id. */
const onpremInput: MigrationInput = { ...input, destWabaId: '1', from: 'onprem', onpremUrl: 'https://onprem.example', carryWebhook: { url: null } };

const pass = (name: CheckResult['name']): CheckResult => ({ name, status: 'pass', detail: '', remedy: '' });
const allPass = ['same_business', 'business_verified', 'wabas_approved', 'payment_method', 'two_step_disabled'].map((n) => pass(n as CheckResult['name']));
const fail = (extra: Partial<FailureInfo>): FailureInfo => ({
  kind: 'graph',
  message: 'x',
  transient: false,
  httpStatus: 400,
  code: 100,
  subcode: null,
  fbtraceId: 'A1',
  retryAfterMs: null,
  at: 1,
  jitter: 0.5,
  ...extra,
});
const transient = fail({ transient: true, code: 2, httpStatus: 500 });
const done = (id: string, output: unknown) => ({ type: `xstate.done.actor.${id}`, output }) as AnyEventObject;
const error = (id: string, err: unknown) => ({ type: `xstate.error.actor.${id}`, error: err }) as AnyEventObject;

/** What can happen in each state: every outcome each actor or person can produce. */
function eventsFor(snapshot: { value: unknown; context: MigrationContext }): AnyEventObject[] {
  const name = stateName(snapshot.value);
  const sub = typeof snapshot.value === 'object' ? Object.values(snapshot.value as object)[0] : null;
  const common: AnyEventObject[] = [{ type: 'CANCEL', by: 't' }];
  switch (name) {
    case 'checking':
      if (snapshot.context.input.from === 'onprem') {
        const onpremChecks = ['business_verified', 'wabas_approved', 'payment_method', 'number_on_premise', 'app_subscribed', 'pin_known'].map((n) => pass(n as CheckResult['name']));
        return [
          done('checks', { businessId: '3', checks: onpremChecks, existing: { id: '9', status: 'CONNECTED', codeVerificationStatus: 'VERIFIED', platformType: 'ON_PREMISE' } }),
          done('checks', { businessId: '3', checks: onpremChecks, existing: { id: '9', status: 'CONNECTED', codeVerificationStatus: 'VERIFIED', platformType: 'CLOUD_API' } }),
          done('checks', { businessId: '3', checks: [...onpremChecks.slice(0, 5), { ...pass('pin_known'), status: 'unknown' }], existing: null }),
          error('checks', transient),
          ...common,
        ];
      }
      return [
        done('checks', { businessId: '3', checks: allPass, existing: null }),
        done('checks', { businessId: '3', checks: allPass, existing: { id: '9', status: 'CONNECTED', codeVerificationStatus: 'VERIFIED' } }),
        done('checks', { businessId: '3', checks: allPass, existing: { id: '9', status: 'PENDING', codeVerificationStatus: 'VERIFIED' } }),
        done('checks', { businessId: '3', checks: allPass, existing: { id: '9', status: 'PENDING', codeVerificationStatus: 'UNVERIFIED' } }),
        done('checks', { businessId: '3', checks: [...allPass.slice(0, 4), { ...pass('two_step_disabled'), status: 'unknown' }], existing: null }),
        error('checks', transient),
        error('checks', fail({ code: 190 })),
        ...common,
      ];
    case 'blocked':
      return [{ type: 'RETRY' }, { type: 'CONFIRM_CHECK', check: 'two_step_disabled', by: 't' }, ...common];
    case 'snapshotting':
      return [done('snapshot', { settings: { callback_persist: true }, carryOver: [] }), error('snapshot', transient), error('snapshot', fail({})), ...common];
    case 'backing_up':
      return [done('backup', { reconciled: false }), error('backup', transient), error('backup', fail({})), ...common];
    case 'carrying_settings':
      return [
        done('carrySettings', { carryOver: [{ setting: 'webhooks.url', value: '""', cloud: 'x', applied: true }] }),
        error('carrySettings', transient),
        error('carrySettings', fail({})),
        ...common,
      ];
    case 'creating':
      return [done('create', { phoneNumberId: '9', adopted: false }), error('create', transient), error('create', fail({})), ...common];
    case 'requesting_code':
      return [
        done('requestCode', { at: 1, alreadyVerified: false }),
        done('requestCode', { at: 1, alreadyVerified: true }),
        error('requestCode', fail({ code: 136024 })),
        error('requestCode', transient),
        error('requestCode', fail({})),
        ...common,
      ];
    case 'awaiting_code':
      return [{ type: 'CODE_SUBMITTED' }, { type: 'RESEND_CODE', method: 'VOICE' }, ...common];
    case 'verifying_code':
      return [
        done('verifyCode', { reconciled: false }),
        error('verifyCode', fail({ kind: 'needs_input', field: 'code', code: null })),
        error('verifyCode', fail({ code: 136025 })),
        error('verifyCode', transient),
        error('verifyCode', fail({})),
        ...common,
      ];
    case 'registering':
      if (sub === 'held') return [{ type: 'PIN_PROVIDED' }, { type: 'OVERRIDE_REGISTER_LIMIT', by: 't' }, ...common];
      return [
        done('register', { reconciled: false }),
        error('register', fail({ kind: 'needs_input', field: 'pin', code: null })),
        error('register', transient),
        error('register', fail({ code: 133016 })),
        ...(snapshot.context.input.from === 'onprem' ? [error('register', fail({ code: 133005 }))] : []),
        ...common,
      ];
    case 'confirming':
      return [
        done('confirm', { connected: true, listed: true, status: 'CONNECTED', displayPhoneNumber: null, verifiedName: null, qualityRating: null, warnings: [] }),
        error('confirm', transient),
        error('confirm', fail({})),
        ...common,
      ];
    case 'waiting_retry':
    case 'failed':
      return [{ type: 'RETRY' }, ...common];
    default:
      return [];
  }
}

const serializeState = (s: { value: unknown; context: MigrationContext }) =>
  // Position plus what changes the way out of it; counters are left out to keep the graph finite.
  JSON.stringify([s.value, s.context.hold, s.context.retry?.step ?? null]);

const options = { input, events: eventsFor as never, serializeState: serializeState as never, limit: 200_000 };
const onpremOptions = { ...options, input: onpremInput };

/** Actors that never settle: the test delivers their outcomes as events. */
const inert = () => fromPromise(() => new Promise<never>(() => {}));
const liveMachine = migrationMachine.provide({
  actors: {
    runChecks: inert(),
    createNumber: inert(),
    requestCode: inert(),
    verifyCode: inert(),
    register: inert(),
    confirm: inert(),
    snapshot: inert(),
    backup: inert(),
    carrySettings: inert(),
  } as never,
});

describe('machine graph', () => {
  it('reaches every externally visible state', () => {
    // The WABA → WABA path and the On-Premises path (issue 12) together reach every state.
    const paths = [...getShortestPaths(migrationMachine, options), ...getShortestPaths(migrationMachine, onpremOptions)];
    const reached = new Set(paths.map((p) => stateName((p.state as { value: unknown }).value)));
    expect([...reached].sort()).toEqual([...STATE_NAMES].sort());
  });

  it('every simple path to completed, blocked, failed and cancelled replays on a live actor', () => {
    const terminal = new Set(['completed', 'blocked', 'failed', 'cancelled']);
    const paths = getSimplePaths(migrationMachine, {
      ...options,
      toState: ((s: { value: unknown }) => terminal.has(stateName(s.value))) as never,
    });
    const byEnd: Record<string, number> = {};
    for (const path of paths) {
      const expected = stateName((path.state as { value: unknown }).value);
      const actor = createActor(liveMachine, { input });
      actor.start();
      for (const step of path.steps.slice(1)) actor.send(step.event as never);
      expect(stateName(actor.getSnapshot().value)).toBe(expected);
      actor.stop();
      byEnd[expected] = (byEnd[expected] ?? 0) + 1;
    }
    for (const t of terminal) expect(byEnd[t], `paths to ${t}`).toBeGreaterThan(0);
  });
});

describe('machine graph: On-Premises path (issue 12)', () => {
  const names = (o: typeof options) => new Set(getShortestPaths(migrationMachine, o).map((p) => stateName((p.state as { value: unknown }).value)));

  it('never creates, requests or verifies a code; the WABA path never snapshots, backs up or carries settings', () => {
    const onprem = names(onpremOptions);
    for (const s of ['creating', 'requesting_code', 'awaiting_code', 'verifying_code']) expect(onprem.has(s as never), s).toBe(false);
    for (const s of ['snapshotting', 'backing_up', 'registering', 'carrying_settings', 'confirming', 'completed']) expect(onprem.has(s as never), s).toBe(true);
    const waba = names(options);
    for (const s of ['snapshotting', 'backing_up', 'carrying_settings']) expect(waba.has(s as never), s).toBe(false);
  });

  it('every simple path to completed, blocked, failed and cancelled replays on a live actor', () => {
    const terminal = new Set(['completed', 'blocked', 'failed', 'cancelled']);
    const paths = getSimplePaths(migrationMachine, { ...onpremOptions, toState: ((s: { value: unknown }) => terminal.has(stateName(s.value))) as never });
    expect(paths.length).toBeGreaterThan(10);
    for (const path of paths) {
      const actor = createActor(liveMachine, { input: onpremInput });
      actor.start();
      for (const step of path.steps.slice(1)) actor.send(step.event as never);
      expect(stateName(actor.getSnapshot().value)).toBe(stateName((path.state as { value: unknown }).value));
      actor.stop();
    }
  });

  it('a CLOUD_API number is adopted: straight to carrying_settings (asked) then confirming, keeping its id', () => {
    const actor = createActor(liveMachine, { input: onpremInput });
    actor.start();
    const checks = ['business_verified', 'wabas_approved', 'payment_method', 'number_on_premise', 'app_subscribed', 'pin_known'].map((n) => pass(n as CheckResult['name']));
    actor.send(done('checks', { businessId: '3', checks, existing: { id: '9', status: 'CONNECTED', codeVerificationStatus: 'VERIFIED', platformType: 'CLOUD_API' } }) as never);
    expect(actor.getSnapshot().value).toBe('carrying_settings');
    expect(actor.getSnapshot().context.phoneNumberId).toBe('9');
    actor.stop();
  });
});

describe('machine rules', () => {
  const run = (events: AnyEventObject[], policy = {}) => {
    const actor = createActor(liveMachine, { input: { ...input, policy: { ...input.policy, ...policy } } });
    actor.start();
    for (const e of events) actor.send(e as never);
    return actor.getSnapshot();
  };
  const toAwaiting = [done('checks', { businessId: '3', checks: allPass, existing: null }), done('create', { phoneNumberId: '9', adopted: false }), done('requestCode', { at: 1000, alreadyVerified: false })];

  it('records an intent before each POST step and clears it on success', () => {
    const s1 = run([done('checks', { businessId: '3', checks: allPass, existing: null })]);
    expect(s1.context.intent).toMatchObject({ step: 'creating', seq: 1, attempt: 1 });
    const s2 = run([...toAwaiting]);
    expect(s2.context.intent).toBeNull();
    expect(s2.context.code).toMatchObject({ requestedAt: 1000, resendAllowedAt: 1000, staleAt: 1000 + DEFAULT_POLICY.codeTtlMs });
  });

  it('a transient failure keeps the intent and the next attempt of it is numbered 2', () => {
    const s = run([done('checks', { businessId: '3', checks: allPass, existing: null }), error('create', transient), { type: 'RETRY' }]);
    expect(stateName(s.value)).toBe('creating');
    expect(s.context.intent).toMatchObject({ step: 'creating', seq: 1, attempt: 2 });
  });

  it('schedules retryAt from the failure time with backoff, never before Retry-After', () => {
    const s = run([done('checks', { businessId: '3', checks: allPass, existing: null }), error('create', fail({ transient: true, code: 4, at: 10_000, jitter: 0, retryAfterMs: 7_000 }))]);
    expect(s.context.retry).toMatchObject({ step: 'creating', retryAt: 17_000 });
    expect(backoffMs(DEFAULT_POLICY, 3, 0.5, null)).toBe(2_000);
    expect(backoffMs(DEFAULT_POLICY, 30, 1, null)).toBe(DEFAULT_POLICY.retryCapMs);
  });

  it('fails a step after its attempt budget of transient errors', () => {
    const s = run([done('checks', { businessId: '3', checks: allPass, existing: null }), error('create', transient), { type: 'RETRY' }, error('create', transient)]);
    expect(stateName(s.value)).toBe('failed');
    expect(s.context.failure).toMatchObject({ step: 'creating', transient: true });
  });

  it('counts register calls and holds before the reserve without an override', () => {
    const toRegister = [...toAwaiting, { type: 'CODE_SUBMITTED' }, done('verifyCode', { reconciled: false })];
    const s = run(toRegister, { registerLimit: 3, registerReserve: 2 });
    expect(s.value).toEqual({ registering: 'submitting' });
    expect(s.context.registerCalls).toHaveLength(1);
    const s2 = run([...toRegister, error('register', transient), { type: 'RETRY' }], { registerLimit: 3, registerReserve: 2 });
    expect(s2.value).toEqual({ registering: 'held' });
    expect(s2.context.hold).toBe('register_limit');
    const s3 = run([...toRegister, error('register', transient), { type: 'RETRY' }, { type: 'OVERRIDE_REGISTER_LIMIT', by: 'ops' }], { registerLimit: 3, registerReserve: 2 });
    expect(s3.value).toEqual({ registering: 'submitting' });
    expect(s3.context.registerOverride?.by).toBe('ops');
    const s4 = run(
      [...toRegister, error('register', transient), { type: 'RETRY' }, { type: 'OVERRIDE_REGISTER_LIMIT', by: 'ops' }, error('register', transient), { type: 'RETRY' }, error('register', transient), { type: 'RETRY' }],
      { registerLimit: 3, registerReserve: 2, maxAttemptsPerStep: 9 },
    );
    expect(stateName(s4.value)).toBe('failed');
    expect(s4.context.failure?.message).toMatch(/register was called 3 times/);
  });

  it('a missing PIN gives the counted call back', () => {
    const s = run([...toAwaiting, { type: 'CODE_SUBMITTED' }, done('verifyCode', { reconciled: false }), error('register', fail({ kind: 'needs_input', field: 'pin', code: null }))]);
    expect(s.value).toEqual({ registering: 'held' });
    expect(s.context.hold).toBe('pin');
    expect(s.context.registerCalls).toHaveLength(0);
  });

  it('refuses a resend during the cool-down', () => {
    const s = run([...toAwaiting, { type: 'RESEND_CODE' }], { resendCooldownMs: 3_600_000_000_000 });
    expect(stateName(s.value)).toBe('awaiting_code');
  });

  it('an operator confirmation passes an unknown check but never a failed one', () => {
    const unknown = { ...pass('two_step_disabled'), status: 'unknown' as const };
    const failed = { ...pass('payment_method'), status: 'fail' as const };
    const s = run([done('checks', { businessId: '3', checks: [failed, unknown], existing: null }), { type: 'CONFIRM_CHECK', check: 'two_step_disabled', by: 'ops' }, { type: 'CONFIRM_CHECK', check: 'payment_method', by: 'ops' }]);
    expect(stateName(s.value)).toBe('blocked');
    expect(s.context.checks.map((c) => c.status)).toEqual(['fail', 'pass']);
    expect(s.context.confirmations.map((c) => c.check)).toEqual(['two_step_disabled', 'payment_method']);
  });
});
